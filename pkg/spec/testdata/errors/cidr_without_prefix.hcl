cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  access "archive" {
    address = "10.1.2.3" # ERROR: Invalid CIDR Address
  }
  node "db1" {
    port = 15432
  }
}
