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
  docker  = "ssh://pacsd@10.0.0.12"
  address = "10.0.0.12"
}
host "b" { # ERROR: Duplicate Host
  docker  = "ssh://pacsd@10.0.0.13"
  address = "10.0.0.13"
}
