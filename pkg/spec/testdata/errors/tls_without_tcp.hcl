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
host "b" {
  docker  = "ssh://pacsd@10.0.0.12"
  address = "10.0.0.12"
  tls { # ERROR: TLS Needs a tcp:// Endpoint
    ca   = "../secrets/ok.password"
    cert = "../secrets/ok.password"
    key  = "../secrets/ok.password"
  }
}
