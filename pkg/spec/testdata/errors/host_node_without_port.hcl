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
  node "db1" { # ERROR: Node on a Host Block Without Port
    host = "b"
  }
  node "db2" {
    host = "b"
    port = 25432
  }
}
cluster "other" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db" { # ERROR: Node on a Host Block Without Port
    host = "local"
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
host "local" {
  docker  = "unix:///var/run/docker.sock"
  address = "10.0.0.11"
}
