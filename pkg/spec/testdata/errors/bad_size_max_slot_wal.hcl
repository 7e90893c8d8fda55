cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  replication {
    password_file = "../secrets/ok.password"
    max_slot_wal  = "lots" # ERROR: Invalid Size
  }
  node "db1" {
    port = 15432
  }
}
