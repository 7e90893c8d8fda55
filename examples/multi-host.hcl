# A primary on one machine and a standby on another, with automatic failover,
# and the pacsd daemon settings spelt out.
# Validate with: pacsd validate -f examples/multi-host.hcl

cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  primary  = "db1"
  database = "pacsdb"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }

  replication {
    password_file = "secrets/replicator.password" # user defaults to "replicator"
    synchronous   = true                          # a commit waits for one standby
  }

  settings = {
    shared_buffers = "1GB"
  }

  access "archive" {
    database = "pacsdb"
    user     = "pacs"
    address  = "10.1.0.0/16"
    method   = "scram-sha-256"
  }

  role "viewer" {
    login         = true
    password_file = "secrets/viewer.password"
  }

  failover {
    automatic = true
    max_lag   = "16MB"
    after     = "3s"
  }

  node "db1" {
    host = "a"
    port = 15432
    data = "/var/local/mypacs/db"
  }

  node "db2" {
    host = "b"
    port = 15432
    data = "/var/local/mypacs/db"
  }
}

host "a" {
  docker  = "unix:///var/run/docker.sock" # the engine of the machine pacsd runs on
  address = "10.0.0.11"
}

host "b" {
  # The engine of b, its socket forwarded to this machine over ssh
  # (ssh -nNT -L /run/pacsd/b.sock:/var/run/docker.sock pacsd@10.0.0.12);
  # or tcp://10.0.0.12:2376 with a tls block.
  docker  = "unix:///run/pacsd/b.sock"
  address = "10.0.0.12"
}

daemon {
  listen    = "127.0.0.1:9187"
  state_dir = "/var/lib/pacsd"
  resync    = "30s"
}
