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
  docker  = "10.0.0.12:2376" # ERROR: Invalid Docker Endpoint
  address = "10.0.0.12"
}
host "c" {
  docker  = "UNIX:///var/run/docker.sock" # ERROR: Invalid Docker Endpoint
  address = "10.0.0.13"
}
