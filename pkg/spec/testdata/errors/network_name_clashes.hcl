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
  clients {
    primary_alias = "rw"
    standby_alias = "ro"
  }
  node "db1" {
    container_name = "db2"
  }
  node "db2" { # ERROR: Node Name Clashes with Container Name
    container_name = "pacs-db2"
  }
  node "db3" {
    container_name = "RW" # ERROR: Alias Clashes with Container Name
  }
  node "db4" {
    container_name = "db4" # the node's own name: one container, no clash
  }
}
