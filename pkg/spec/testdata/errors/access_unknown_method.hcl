cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  access "archive" {
    address = "10.1.0.0/16"
    method  = "scram-sha256" # ERROR: Unsupported Authentication Method
  }
  node "db1" {
    port = 15432
  }
}
