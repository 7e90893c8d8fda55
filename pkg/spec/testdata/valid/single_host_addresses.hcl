# Nodes of a cluster on one host block replicate on the cluster network, not
# through the host's address: a host name, a loopback or unspecified address,
# or two host blocks with one address are all accepted for such clusters.
cluster "named" {
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
    host = "named"
    port = 15432
  }
  node "db2" {
    host = "named"
    port = 15433
  }
}

cluster "loopback" {
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
    host = "loopback"
    port = 15432
  }
  node "db2" {
    host = "loopback"
    port = 15433
  }
}

cluster "everywhere" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "everywhere"
    port = 15432
  }
}

cluster "local" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "localhost"
    port = 15432
  }
}

host "named" {
  docker  = "unix:///run/pacsd/named.sock"
  address = "db-b.example.org"
}

host "loopback" {
  docker  = "unix:///run/pacsd/loopback.sock"
  address = "127.0.0.1"
}

host "everywhere" {
  docker  = "unix:///run/pacsd/everywhere.sock"
  address = "0.0.0.0"
}

host "localhost" {
  docker  = "unix:///run/pacsd/localhost.sock"
  address = "localhost"
}

host "also-loopback" {
  docker  = "unix:///run/pacsd/also-loopback.sock"
  address = "127.0.0.1"
}
