cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    data = "/srv/pacs/db"
  }
}
cluster "other" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "here"
    port = 15432
    data = "/srv/pacs/db" # ERROR: Duplicate Data Directory
  }
}
host "here" {
  docker  = "unix:///var/run/docker.sock" # the engine nodes without host use too
  address = "10.0.0.11"
}
