cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  replication {
    password_file = "../secrets/ok.password"
  }
  node "db" { # ERROR: Alias Clashes with Node Name
    port = 15432
  }
  node "db-ro" { # ERROR: Alias Clashes with Node Name
    port = 25432
  }
}
