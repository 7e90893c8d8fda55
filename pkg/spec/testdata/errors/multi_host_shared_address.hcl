# Two host blocks with one address and nodes of one cluster on different
# ports: valid, but pg_hba.conf and pacsd cannot tell the hosts apart.
# Host blocks that share an address but no cluster are left alone.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
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
    port = 25432
  }
}
cluster "other" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  replication {
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "c"
    port = 35432
  }
  node "db2" {
    host = "d"
    port = 35432
  }
}
host "a" {
  docker  = "unix:///run/pacsd/a.sock"
  address = "10.0.0.11"
}
host "b" {
  docker  = "unix:///run/pacsd/b.sock"
  address = "10.0.0.11" # WARNING@13: Hosts Share an Address
}
host "c" {
  docker  = "unix:///run/pacsd/c.sock"
  address = "10.0.0.11"
}
host "d" {
  docker  = "unix:///run/pacsd/d.sock"
  address = "10.0.0.14"
}
