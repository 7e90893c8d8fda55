# http:// to etcd off loopback is unencrypted: a warning, per endpoint.
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
      "http://127.0.0.1:2379",
      "http://localhost:22379",
      "http://[::1]:32379",
      "http://10.0.0.12:2379", # WARNING@7: Unencrypted Etcd Endpoint
      "http://etcd.example.org:2379", # WARNING@7: Unencrypted Etcd Endpoint
    ]
    prefix = "/pacsd/site-a"
  }
}
