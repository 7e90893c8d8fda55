cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  access "standbys" {
    database = "replication" # ERROR: Replication Access Is Managed by pacsd
    address  = "10.1.0.0/16"
  }
  node "db1" {
    port = 15432
  }
}
