cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  clients {
    primary_alias = "db-ro" # ERROR: Duplicate Client Alias
  }
  node "db1" {
    port = 15432
  }
}
