cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  replication {
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "a"
    port = 15432
    data = "/srv/pacs/db"
  }
  node "db2" {
    host = "b"
    port = 25432
    data = "/srv/pacs/db" # ERROR: Duplicate Data Directory
  }
}
host "a" {
  docker  = "unix:///var/run/docker.sock"
  address = "10.0.0.11"
}
host "b" {
  docker  = "unix:///var/run/docker.sock" # ERROR: Duplicate Docker Endpoint
  address = "10.0.0.11"
}
host "c" {
  docker  = "unix:///var//run/./docker.sock" # ERROR: Duplicate Docker Endpoint
  address = "10.0.0.11"
}
