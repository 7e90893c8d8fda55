cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  superuser { # ERROR: Duplicate Superuser Block
    name          = "other"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
