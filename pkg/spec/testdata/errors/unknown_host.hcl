cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "bb" # ERROR@12: Unknown Host
    port = 15432
  }
}
host "b" {
  docker  = "unix:///run/pacsd/engine-b.sock"
  address = "10.0.0.12"
}
