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
cluster "other" { # ERROR: Duplicate Network
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  network  = "pacs"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
  }
}
