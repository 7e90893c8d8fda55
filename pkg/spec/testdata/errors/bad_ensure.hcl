cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  role "viewer" {
    ensure = "gone" # ERROR: Invalid Ensure Value
  }
  node "db1" {
    port = 15432
  }
}
