# Each etcd endpoint is http(s)://host:port, once; an empty list names no
# member at all.
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
    endpoints = [
      "https://10.0.0.11:2379",
      "https://10.0.0.11:02379", # ERROR@7: Duplicate Etcd Endpoint
      "https://[fd00::11]:2379",
      "https://[fd00:0::11]:2379", # ERROR@7: Duplicate Etcd Endpoint
      "https://Etcd.Example.org:2379",
      "https://etcd.example.org:2379", # ERROR@7: Duplicate Etcd Endpoint
      "http://10.0.0.11:2379",
      "https://10.0.0.12", # ERROR@7: Invalid Etcd Endpoint
      "https://10.0.0.13:2379/v3", # ERROR@7: Invalid Etcd Endpoint
      "https://root:do-not-print@10.0.0.14:2379", # ERROR@7: Invalid Etcd Endpoint
      "grpc://10.0.0.15:2379", # ERROR@7: Invalid Etcd Endpoint
      "10.0.0.16:2379", # ERROR@7: Invalid Etcd Endpoint
      "https://10.0.0.17:65536", # ERROR@7: Invalid Etcd Endpoint
      "https://10.0.0.18:2379?x=1", # ERROR@7: Invalid Etcd Endpoint
      "https://:2379", # ERROR@7: Invalid Etcd Endpoint
      "https://etcd_1:2379", # ERROR@7: Invalid Etcd Endpoint
    ]
    tls { # ERROR@5: Etcd TLS Without https://
      ca   = "../secrets/tls-ca.pem"
      cert = "../secrets/tls-cert.pem"
      key  = "../secrets/tls-key.pem"
    }
  }
}
