# Two ssh:// endpoints on one host, port and socket name one Docker engine,
# whatever the user.
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
  docker  = "ssh://pacsd@10.0.0.12"
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "c" {
  docker  = "ssh://root@10.0.0.12:22/var/run/./docker.sock" # ERROR: Duplicate Docker Endpoint
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "d" {
  docker  = "ssh://pacsd@DB-B.example.org"
  address = "10.0.0.14"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "e" {
  docker  = "ssh://pacsd@db-b.example.org:22" # ERROR: Duplicate Docker Endpoint
  address = "10.0.0.14"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
