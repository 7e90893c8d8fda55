# A standby on a host whose Docker engine pacsd reaches over ssh: the engine's
# socket (default /var/run/docker.sock) through an ssh connection, with the
# key and the known_hosts file named in the host's ssh block.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  primary  = "db1"
  database = "pacsdb"
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
  node "db2" {
    host = "b"
    port = 15432
  }
}
host "a" {
  docker  = "ssh://pacsd@10.0.0.13:2222/run/user/1000/docker.sock"
  address = "10.0.0.13"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
host "b" {
  docker  = "ssh://root@db-b.example.org"
  address = "10.0.0.14"
  ssh {
    identity_file = "../secrets/ssh-key"
    known_hosts   = "../secrets/ssh-known_hosts"
  }
}
