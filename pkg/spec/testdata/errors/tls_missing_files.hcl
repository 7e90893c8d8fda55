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
  docker  = "tcp://10.0.0.12:2376"
  address = "10.0.0.12"
  tls {
    ca   = "certs/ca.pem" # ERROR: TLS CA File Not Found
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/open.password" # ERROR: TLS Key Readable by Others
  }
}
