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
# Every address (":9187", "0.0.0.0", "[::]") is off loopback: TLS alone does not
# authenticate the clients.
daemon {
  listen = ":9187" # ERROR@12: HTTP Endpoint Without Authentication
  tls {
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-key.pem"
  }
}
daemon { # ERROR: Duplicate Daemon Block
  listen = "0.0.0.0:9187"
}
