cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  role "pg_monitor" { # ERROR: Reserved Role Name
  }
  role "pacs" { # ERROR: Role Name Taken
  }
  node "db1" {
    port = 15432
  }
}
