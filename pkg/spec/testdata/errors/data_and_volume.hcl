cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    data   = "/var/local/mypacs/db"
    volume = "pacs-db1" # ERROR: Conflicting Data Location
  }
}
