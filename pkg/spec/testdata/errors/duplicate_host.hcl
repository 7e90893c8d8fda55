cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
host "b" {
  docker  = "unix:///run/pacsd/engine-b.sock"
  address = "10.0.0.12"
}
host "b" { # ERROR: Duplicate Host
  docker  = "unix:///run/pacsd/engine-c.sock"
  address = "10.0.0.13"
}
