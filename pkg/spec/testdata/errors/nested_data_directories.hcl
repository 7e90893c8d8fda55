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
    data = "/var/local/mypacs"
  }
  node "db2" {
    data = "/var/local/mypacs/slave_db" # ERROR: Nested Data Directories
  }
}
