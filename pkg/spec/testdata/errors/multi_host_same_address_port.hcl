# Two nodes of a cluster on different host blocks reached at one address and
# port: a standby could follow itself or the wrong node. Addresses are
# compared as IP addresses.
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
    port = 15432 # ERROR@12: Nodes Share an Address and Port
  }
  node "db3" {
    host = "c"
    port = 15432
  }
}
cluster "v6" {
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
    port = 25432
  }
  node "db2" {
    host = "e"
    port = 25432 # ERROR@12: Nodes Share an Address and Port
  }
}
cluster "mapped" {
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
    host = "f"
    port = 35432
  }
  node "db2" {
    host = "g"
    port = 35432 # ERROR@12: Nodes Share an Address and Port
  }
}
host "a" {
  docker  = "unix:///run/pacsd/a.sock"
  address = "10.0.0.11"
}
host "b" {
  docker  = "unix:///run/pacsd/b.sock"
  address = "10.0.0.11"
}
host "c" {
  docker  = "unix:///run/pacsd/c.sock"
  address = "10.0.0.13"
}
host "d" {
  docker  = "unix:///run/pacsd/d.sock"
  address = "fd00::12"
}
host "e" {
  docker  = "unix:///run/pacsd/e.sock"
  address = "fd00:0:0::0012"
}
host "f" {
  docker  = "unix:///run/pacsd/f.sock"
  address = "10.0.0.20"
}
host "g" {
  docker  = "unix:///run/pacsd/g.sock"
  address = "::ffff:10.0.0.20"
}
