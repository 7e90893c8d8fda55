cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/empty.password" # ERROR: Empty Password File
  }
  node "db1" {
    port = 15432
  }
}
