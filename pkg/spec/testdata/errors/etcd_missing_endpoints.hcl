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
host "a" {
  address = "10.0.0.11"
}
daemon {
  etcd { # ERROR@8: Missing Required Argument
    prefix = "/pacsd"
    tls { # no endpoint to judge it by
      ca   = "../secrets/tls-ca.pem"
      cert = "../secrets/tls-cert.pem"
      key  = "../secrets/tls-key.pem"
    }
  }
}
