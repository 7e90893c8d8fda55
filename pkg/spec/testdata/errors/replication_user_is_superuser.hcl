cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  replication {
    user          = "pacs" # ERROR@21: Replication User Is the Superuser
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
