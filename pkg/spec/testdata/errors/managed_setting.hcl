cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  settings = {
    listen_addresses = "*" # ERROR: Parameter Managed by pacsd
    hot_standby      = "on" # ERROR: Parameter Managed by pacsd
  }
  node "db1" {
    port = 15432
  }
}
