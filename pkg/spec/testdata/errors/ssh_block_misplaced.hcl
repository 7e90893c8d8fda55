# An ssh block belongs to an ssh:// endpoint, a tls block to a tcp:// one.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
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
  ssh { # ERROR: SSH Block Needs an ssh:// Endpoint
    identity_file = "../secrets/ssh-key"
  }
}
host "c" {
  docker  = "unix:///run/pacsd/engine-c.sock"
  address = "10.0.0.13"
  ssh { # ERROR: SSH Block Needs an ssh:// Endpoint
    known_hosts = "../secrets/ssh-known_hosts"
  }
}
host "d" {
  docker  = "ssh://pacsd@10.0.0.12"
  address = "10.0.0.12"
  tls { # ERROR: TLS Needs a tcp:// Endpoint
    ca   = "../secrets/tls-ca.pem"
    cert = "../secrets/tls-cert.pem"
    key  = "../secrets/tls-key.pem"
  }
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
    identity      = "../secrets/ssh-key" # ERROR: Unsupported Argument
  }
}
