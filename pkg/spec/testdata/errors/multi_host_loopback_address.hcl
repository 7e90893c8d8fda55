# Nodes of a cluster on several host blocks replicate through their hosts'
# addresses: from another host (and inside a container) a loopback or
# unspecified address names that machine itself, not the host.
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
  node "db3" {
    host = "c"
    port = 15432
  }
  node "db4" {
    host = "d"
    port = 15432
  }
  node "db5" {
    host = "e"
    port = 15432
  }
  node "db6" {
    host = "f"
    port = 15432
  }
  node "db7" {
    host = "g"
    port = 15432
  }
  node "db8" {
    host = "h"
    port = 15432
  }
  node "db9" {
    host = "ok"
    port = 15432
  }
}
# A cluster on one host block replicates on its cluster network: any address will do.
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
    host = "lo"
    port = 15433
  }
  node "db2" {
    host = "lo"
    port = 15434
  }
}
host "a" {
  docker  = "unix:///run/pacsd/a.sock"
  address = "127.0.0.1" # ERROR@13: Loopback Host Address
}
host "b" {
  docker  = "unix:///run/pacsd/b.sock"
  address = "::1" # ERROR@13: Loopback Host Address
}
host "c" {
  docker  = "unix:///run/pacsd/c.sock"
  address = "localhost" # ERROR@13: Loopback Host Address
}
host "d" {
  docker  = "unix:///run/pacsd/d.sock"
  address = "0.0.0.0" # ERROR@13: Unspecified Host Address
}
host "e" {
  docker  = "unix:///run/pacsd/e.sock"
  address = "::" # ERROR@13: Unspecified Host Address
}
host "f" {
  docker  = "unix:///run/pacsd/f.sock"
  address = "127.1.2.3" # ERROR@13: Loopback Host Address
}
host "g" {
  docker  = "unix:///run/pacsd/g.sock"
  address = "::ffff:127.0.0.1" # ERROR@13: Loopback Host Address
}
host "h" {
  docker  = "unix:///run/pacsd/h.sock"
  address = "DB.Localhost" # ERROR@13: Loopback Host Address
}
host "ok" {
  docker  = "unix:///run/pacsd/ok.sock"
  address = "10.0.0.19"
}
host "lo" {
  docker  = "unix:///run/pacsd/lo.sock"
  address = "127.0.0.1"
}
