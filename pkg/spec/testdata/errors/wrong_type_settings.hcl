cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  settings = "shared_buffers=1GB" # ERROR: Invalid Settings
  node "db1" {
    port = 15432
  }
}
