cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  network  = "pacs$(id)" # ERROR: Invalid Network Name
  primary  = "db1"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  replication {
    password_file = "../secrets/ok.password"
  }
  clients {
    primary_alias = "db;x" # ERROR: Invalid Alias
  }
  node "db1" {
    container_name = "x" # ERROR: Invalid Container Name
  }
  node "db2" {
    volume = "../etc" # ERROR: Invalid Volume Name
  }
}
