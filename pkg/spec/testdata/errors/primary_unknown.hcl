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
  primary = "db3" # ERROR: Unknown Primary Node

  node "db1" {
    port = 15432
  }

  node "db2" {
    port = 25432
  }
}
