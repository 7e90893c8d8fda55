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
  listen = "0.0.0.0:9187"
  tls {
    cert      = "../secrets/ok.password" # ERROR@17: Invalid TLS Certificate
    key       = "../secrets/open.password" # ERROR@17: TLS Key Readable by Others
    client_ca = "../secrets/tls-ca.pem"
  }
}
