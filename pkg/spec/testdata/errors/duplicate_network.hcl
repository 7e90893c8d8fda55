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
  network  = "pacs" # ERROR@14: Duplicate Network
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
  }
}
# Cluster "third" leaves network out, so it defaults to its name, which the
# network attribute of cluster "fourth" named first: the header is at fault.
cluster "fourth" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  network  = "third"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15442
  }
}
cluster "third" { # ERROR@1: Duplicate Network
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15443
  }
}
