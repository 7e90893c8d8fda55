cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser { # ERROR: Missing Password
    name = "pacs"
  }
  node "db1" {
    port = 15432
  }
}
