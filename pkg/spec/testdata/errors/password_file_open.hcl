cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/open.password" # ERROR: Password File Readable by Others
  }
  node "db1" {
    port = 15432
  }
}
