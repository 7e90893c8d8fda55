# ssh:// endpoints that cannot be used: ssh://USER@HOST[:PORT][/path/to/docker.sock].
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "b"
    port = 15432
  }
}
host "b" {
  docker  = "ssh://10.0.0.12" # ERROR: Invalid SSH Endpoint
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "c" {
  docker  = "ssh://pacsd:s3cret@10.0.0.12" # ERROR: Invalid SSH Endpoint
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "d" {
  docker  = "ssh://pacsd@10.0.0.12:70000" # ERROR: Invalid SSH Endpoint
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "e" {
  docker  = "ssh://pacsd@10.0.0.12/var/run/docker.sock?user=root" # ERROR: Invalid SSH Endpoint
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "f" {
  docker  = "ssh://pacsd@db_b.example.org" # ERROR: Invalid SSH Endpoint
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "g" {
  docker  = "ssh://pacsd@" # ERROR: Invalid SSH Endpoint
  address = "10.0.0.12"
}
host "h" {
  docker  = "SSH://pacsd@10.0.0.12" # ERROR: Invalid Docker Endpoint
  address = "10.0.0.12"
}
