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
# A client certificate authority authenticates without a token.
daemon {
  listen = "0.0.0.0:9187"
  tls {
    cert      = "../secrets/tls-cert.pem"
    key       = "../secrets/tls-other-key.pem" # ERROR@17: TLS Key Does Not Match the Certificate
    client_ca = "../secrets/tls-ca.pem"
  }
}
