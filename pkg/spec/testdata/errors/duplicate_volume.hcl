cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  replication {
    password_file = "../secrets/ok.password"
  }
  primary = "db1"
  node "db1" {
    volume = "pacs-data"
  }
  node "db2" {
    volume = "pacs-data" # ERROR: Duplicate Volume
  }
}
