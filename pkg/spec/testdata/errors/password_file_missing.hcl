cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/nothing-here.password" # ERROR: Password File Not Found
  }
  node "db1" {
    port = 15432
  }
}
