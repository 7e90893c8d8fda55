cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "b"
    port = 15432
  }
}
host "b" {
  docker  = "ssh://pacsd@10.0.0.12" # ERROR: SSH Docker Endpoints Not Supported
  address = "10.0.0.12"
}
