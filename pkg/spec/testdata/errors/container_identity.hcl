# A node's container name is its identity in its TLS certificate: one per
# node of a cluster on every host, and a DNS label of at most 63 bytes.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
  replication {
    password_file = "../secrets/ok.password"
  }
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    container_name = "postgres"
    host           = "a"
    port           = 15432
  }
  node "db2" {
    container_name = "postgres" # ERROR@22: Duplicate Container Name in Cluster
    host           = "b"
    port           = 15432
  }
  node "db3" {
    container_name = "a-container-name-that-is-longer-than-a-dns-label-can-ever-be-xyz" # ERROR@22: Container Name Too Long
    host           = "a"
    port           = 15433
  }
}
host "a" {
  docker  = "tcp://10.0.0.11:2376"
  address = "10.0.0.11"
  tls {
    ca   = "../secrets/tls-ca.pem"
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-key.pem"
  }
}
host "b" {
  docker  = "tcp://10.0.0.12:2376"
  address = "10.0.0.12"
  tls {
    ca   = "../secrets/tls-ca.pem"
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-key.pem"
  }
}
