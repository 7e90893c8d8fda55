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
    ca   = "../secrets/tls-key.pem" # ERROR: Invalid TLS CA File
    cert = "../secrets/ok.password" # ERROR: Invalid TLS Certificate
    key  = "../secrets/tls-cert.pem" # ERROR: Invalid TLS Key
  }
}
host "c" {
  docker  = "tcp://10.0.0.13:2376"
  address = "10.0.0.13"
  tls {
    ca   = "../secrets/tls-ca.pem"
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-other-key.pem" # ERROR: TLS Key Does Not Match the Certificate
  }
}
