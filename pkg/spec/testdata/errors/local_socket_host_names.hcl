cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port           = 15432
    container_name = "archive-db"
    volume         = "archive-data"
  }
}
cluster "other" {
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
    host = "here"
    port = 15432 # ERROR@12: Duplicate Host Port
  }
  node "db2" {
    host           = "here"
    port           = 15433
    container_name = "archive-db" # ERROR@22: Duplicate Container Name
  }
  node "db3" {
    host   = "here"
    port   = 15434
    volume = "archive-data" # ERROR: Duplicate Volume
  }
}
host "here" {
  docker  = "unix:///run/docker.sock"
  address = "10.0.0.11"
}
