# A cluster's tls block: the operator's CA needs both files, a readable
# certificate, and a lifetime pacsd can renew in time; cert needs TLS.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  tls {
    ca            = "../secrets/ok.password" # ERROR@21: Invalid TLS CA File
    ca_key        = "../secrets/tls-key.pem"
    cert_lifetime = "30s" # ERROR@21: Certificate Lifetime Out of Range
  }
  access "cert" {
    address = "10.1.0.0/16"
    method  = "cert"
    ssl     = false # ERROR@15: Certificate Authentication Needs TLS
  }
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {}
}
cluster "ris" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "risdb"
  network  = "ris"
  tls {
    ca_key = "../secrets/tls-key.pem" # ERROR@14: CA Certificate Missing
  }
  superuser {
    name          = "ris"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    volume = "ris-db1"
  }
}
# Renewed once a third of the lifetime is left: a lifetime under three
# times daemon.resync (30s) may expire between passes.
cluster "his" { # WARNING@1: Certificates Renewed Late
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "hisdb"
  network  = "his"
  tls {
    cert_lifetime = "1m"
  }
  superuser {
    name          = "his"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    volume = "his-db1"
  }
}
