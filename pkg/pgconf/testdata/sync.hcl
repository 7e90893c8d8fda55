# Synchronous replication across two hosts, with client access rules.
cluster "archive" {
  image    = "postgres:16"
  database = "pacsdb"
  primary  = "db-a"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }

  replication {
    user          = "streamer"
    password_file = "secrets/replicator.password"
    synchronous   = true
    max_slot_wal  = "1536MB"
  }

  access "archive" {
    database = "pacsdb"
    user     = "pacs"
    address  = "10.1.0.0/16"
    method   = "scram-sha-256"
  }

  access "viewers" {
    user    = "+viewers"
    address = "fd00::/8"
    method  = "cert"
  }

  access "odd-database" {
    database = "sameuser"
    address  = "samenet"
    method   = "md5"
  }

  access "nobody" {
    address = "samehost"
    method  = "reject"
  }

  node "db-a" {
    host = "a"
    port = 15432
  }

  node "db-b" {
    host = "b"
    port = 15432
  }

  node "db-c" {
    host = "c"
    port = 15432
  }
}

host "a" {
  docker  = "unix:///var/run/docker.sock"
  address = "192.0.2.7"
}

host "b" {
  docker  = "unix:///run/pacsd/b.sock"
  address = "10.0.0.12"
}

host "c" {
  docker  = "unix:///run/pacsd/c.sock"
  address = "10.0.0.13"
}
