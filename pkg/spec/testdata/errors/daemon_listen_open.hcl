cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
daemon {
  listen = ":9187" # WARNING: Status Endpoints Open to the Network
}
daemon { # ERROR: Duplicate Daemon Block
  listen = "0.0.0.0:9187"
}
