# pg_hba.conf would match a host name only by a reverse DNS lookup inside the
# container, which Docker's DNS cannot answer for the hosts: a host with nodes
# of a cluster on several host blocks needs an IP address. One diagnostic per
# host, naming every such cluster; a cluster on one host block keeps its names.
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
    port = 15432
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
    host = "a"
    port = 25432
  }
  node "db2" {
    host = "c"
    port = 25432
  }
}
cluster "single" {
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
    host = "d"
    port = 15432
  }
  node "db2" {
    host = "d"
    port = 25432
  }
}
host "a" {
  docker  = "unix:///run/pacsd/a.sock"
  address = "db-a.example.org" # ERROR@13: Host Address Is Not an IP Address
}
host "b" {
  docker  = "unix:///run/pacsd/b.sock"
  address = "10.0.0.12"
}
host "c" {
  docker  = "unix:///run/pacsd/c.sock"
  address = "db-c" # ERROR@13: Host Address Is Not an IP Address
}
host "d" {
  docker  = "unix:///run/pacsd/d.sock"
  address = "db-d.example.org"
}
