# Every block and attribute of the language, in two clusters.
cluster "pacs" {
  image   = "dcm4che/postgres-dcm4chee:17.4-34"
  network = "pacs-net"
  primary = "db2"

  superuser {
    name     = "pacs"
    password = env("PACSD_TEST_PASSWORD")
  }
  database = "pacsdb"

  replication {
    user          = "streamer"
    password_file = "../secrets/ok.password"
    synchronous   = true
    max_slot_wal  = "512MB"
  }

  settings = {
    shared_buffers      = "256MB"
    join_collapse_limit = 16
    from_collapse_limit = 16
  }

  access "archive" {
    database = "pacsdb"
    user     = "pacs"
    address  = "10.1.0.0/16"
    method   = "scram-sha-256"
  }

  access "v6" {
    address = "fd00::/8"
    method  = "md5"
  }

  access "local" {
    address = "samehost"
    method  = "reject"
  }

  role "viewer" {
    login         = true
    password_file = "../secrets/ok.password"
    member_of     = ["pg_read_all_data"]
  }

  role "legacy" {
    ensure = "absent"
  }

  clients {
    primary_alias = "pacsdb"
    standby_alias = ""
  }

  failover {
    automatic = true
    max_lag   = "1GB"
    after     = "1m30s"
  }

  node "db1" {
    host = "a"
    port = 15432
    data = "/var/local/mypacs/db"
  }

  node "db2" {
    host           = "b"
    port           = 15432
    volume         = "pacs-db2-volume"
    container_name = "pacsdb-second"
  }
}

cluster "research" {
  image    = "postgres:16-alpine"
  database = "research"

  superuser {
    name          = "research"
    password_file = "../secrets/ok.password"
  }

  node "db" {
    port = 15433
    data = "data/research" # relative to this file
  }
}

host "a" {
  docker  = "unix:///var/run/docker.sock"
  address = "10.0.0.11"
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

daemon {
  listen    = "[::1]:9187"
  state_dir = "state"
  resync    = "2m"
}
