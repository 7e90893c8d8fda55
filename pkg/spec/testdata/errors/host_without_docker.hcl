# Without daemon.etcd one pacsd drives every host's engine: a host block
# needs docker.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "a"
    port = 15432
  }
}
host "a" { # ERROR@10: Missing Required Argument
  address = "10.0.0.11"
}
host "b" { # ERROR@10: Missing Required Argument
  address = "10.0.0.12"
  tls {
    ca   = "../secrets/tls-ca.pem"
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-key.pem"
  }
  ssh {}
}
