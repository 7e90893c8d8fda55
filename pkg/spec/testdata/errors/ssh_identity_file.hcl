# The key pacsd offers on an ssh:// endpoint: a private key file without a
# passphrase that only its owner may read, checked when the file is validated.
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
    identity_file = "../secrets/no-such-key" # ERROR: SSH Key Not Found
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "c" {
  docker  = "ssh://pacsd@10.0.0.13:2222"
  address = "10.0.0.13"
  ssh {
    identity_file = "../secrets/ssh-open-key" # ERROR: SSH Key Readable by Others
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "d" {
  docker  = "ssh://pacsd@db-b.example.org"
  address = "10.0.0.14"
  ssh {
    identity_file = "../secrets/ssh-passphrase-key" # ERROR: SSH Key Protected by a Passphrase
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "e" {
  docker  = "ssh://root@10.0.0.12/run/docker.sock"
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets/ssh-not-a-key" # ERROR: Invalid SSH Key
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "f" {
  docker  = "ssh://root@10.0.0.12/run/docker-f.sock"
  address = "10.0.0.12"
  ssh {
    identity_file = "../secrets" # ERROR: SSH Key Is Not a Regular File
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
