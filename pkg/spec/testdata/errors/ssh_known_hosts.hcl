# pacsd connects over ssh:// only to a host whose key its known_hosts file
# holds (for the host and port of the endpoint).
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
    known_hosts   = "../secrets/no-such-known_hosts" # ERROR: Known Hosts File Not Found
  }
}
host "c" {
  docker  = "ssh://pacsd@10.0.0.13:2222"
  address = "10.0.0.13"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts-invalid" # ERROR: Invalid Known Hosts File
  }
}
host "d" {
  docker  = "ssh://pacsd@10.0.0.99" # ERROR: Unknown SSH Host
  address = "10.0.0.99"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "e" {
  docker  = "ssh://pacsd@10.0.0.12:2200" # ERROR: Unknown SSH Host
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "f" {
  docker  = "ssh://pacsd@10.0.0.14"
  address = "10.0.0.14"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets" # ERROR: Known Hosts File Is Not a Regular File
  }
}
