# With pacsd on every host, each node names a host block; a host block's
# docker attribute may be left out.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  replication {
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "a"
    port = 15432
  }
  node "db2" { # ERROR@3: Node Without Host
    port = 15432
  }
}
cluster "solo" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db" {} # ERROR@3: Node Without Host
}
host "a" {
  address = "10.0.0.11"
}
daemon {
  etcd {
    endpoints = ["https://10.0.0.11:2379"]
    tls {
      ca   = "../secrets/tls-ca.pem"
      cert = "../secrets/tls-cert.pem"
      key  = "../secrets/tls-key.pem"
    }
  }
}
