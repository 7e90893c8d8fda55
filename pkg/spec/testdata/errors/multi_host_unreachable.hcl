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
  node "db1" { # ERROR: Node Unreachable from Other Hosts
  }
  node "db2" {
    host = "b"
    port = 15432
  }
}
host "b" {
  docker  = "unix:///run/pacsd/engine-b.sock"
  address = "10.0.0.12"
}
