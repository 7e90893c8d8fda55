# The etcd tls block is checked like a host's: files relative to this file, PEM, the key readable by its owner only.
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
  etcd {
    endpoints = ["https://10.0.0.11:2379"]
    tls {
      ca   = "certs/etcd-ca.pem" # ERROR@14: TLS CA File Not Found
      cert = "../secrets/ok.password" # ERROR@14: Invalid TLS Certificate
      key  = "../secrets/open.password" # ERROR@14: TLS Key Readable by Others
    }
    tls { # ERROR@5: Duplicate TLS Block
      ca   = "../secrets/tls-ca.pem"
      cert = "../secrets/tls-cert.pem"
      key  = "../secrets/tls-key.pem"
    }
  }
}
