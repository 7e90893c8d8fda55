daemon {
  state_dir = "/srv/pacs"
}

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
    data = "/srv/pacs/db1" # ERROR: State Directory Overlaps Data
  }
  node "db2" {
    data = "/srv/pacs-db2"
    port = 5433
  }
  node "db3" {
    data = "/srv/pacs-db3"
    port = 5434
  }
}
