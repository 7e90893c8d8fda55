# With pacsd on every host a host block without docker drives the engine of
# its pacsd's environment: a tls or ssh block there would go unused. Hosts
# on unix:// sockets or loopback addresses are different engines, each on
# its own machine; one remote tcp:// endpoint named twice is one engine.
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
    data = "/srv/pacs/db"
  }
  node "db2" {
    host = "b"
    port = 15432
    data = "/srv/pacs/db"
  }
  node "db3" {
    host = "c"
    port = 15432
    data = "/srv/pacs/db"
  }
}
host "a" {
  address = "10.0.0.11"
  tls { # ERROR@3: TLS Needs a tcp:// Endpoint
    ca   = "../secrets/tls-ca.pem"
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-key.pem"
  }
}
host "b" {
  docker  = "unix:///var/run/docker.sock"
  address = "10.0.0.12"
  ssh {} # ERROR@3: SSH Block Needs an ssh:// Endpoint
}
host "c" {
  address = "10.0.0.13"
  ssh { # ERROR@3: SSH Block Needs an ssh:// Endpoint
    known_hosts = "../secrets/ssh-known_hosts"
  }
}
host "d" {
  docker  = "unix:///var/run/docker.sock"
  address = "10.0.0.14"
}
host "e" {
  docker  = "tcp://127.0.0.1:2375" # WARNING: Unencrypted Docker Endpoint
  address = "10.0.0.15"
}
host "f" {
  docker  = "tcp://127.0.0.1:2375" # WARNING: Unencrypted Docker Endpoint
  address = "10.0.0.16"
}
host "g" {
  docker  = "tcp://10.0.0.20:2376"
  address = "10.0.0.20"
  tls {
    ca   = "../secrets/tls-ca.pem"
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-key.pem"
  }
}
host "h" {
  docker  = "tcp://10.0.0.20:2376" # ERROR@13: Duplicate Docker Endpoint
  address = "10.0.0.21"
  tls {
    ca   = "../secrets/tls-ca.pem"
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-key.pem"
  }
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
