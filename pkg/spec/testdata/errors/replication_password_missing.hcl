cluster "pacs" { # ERROR: Missing Replication Password
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  primary = "db1"

  node "db1" {
    port = 15432
  }

  node "db2" {
    port = 25432
  }
}
