cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
  superuser {
    name          = "pg_admin" # ERROR: Reserved Role Name
    password_file = "../secrets/ok.password"
  }
  replication {
    user          = "public" # ERROR: Reserved Role Name
    password_file = "../secrets/ok.password"
  }
  role "current_user" { # ERROR: Reserved Role Name
  }
  node "db1" {
    port = 15432
  }
  node "db2" {
    port = 25432
  }
}
