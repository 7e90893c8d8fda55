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
cluster "other" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    container_name = "pacs-db1" # ERROR@22: Duplicate Container Name
  }
}
# The default container name "pacs-x-db" of node "db" is taken by the
# container_name of another cluster's node: with no container_name of its own
# to point at, the node's header is at fault.
cluster "pacs-y" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "x-db" {
    container_name = "pacs-x-db"
    port           = 15441
  }
}
cluster "pacs-x" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db" { # ERROR@3: Duplicate Container Name
    port = 15440
  }
}
