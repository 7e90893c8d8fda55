cluster "pacs" { # ERROR: Missing Superuser Block
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  node "db1" {
    port = 15432
  }
}
