# pacsd verifies https:// members with the CA of a tls block.
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
  etcd { # ERROR@3: Etcd https:// Without TLS
    endpoints = ["https://10.0.0.11:2379", "https://10.0.0.12:2379"]
  }
}
