# failover.ttl lies between 2s and 10m: pacsd renews the lease every ttl/5
# and fences its primary after ttl/2 without a renewal.
cluster "pacs" { # ERROR@1: Failsafe Needs a Reachable Listen Address
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  failover {
    automatic = true
    ttl       = "1500ms" # ERROR@17: Failover TTL Too Short
    failsafe  = true
  }
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "a"
    port = 15432
  }
}
cluster "ris" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "risdb"
  failover {
    automatic = true
    ttl       = "10m1s" # ERROR@17: Failover TTL Too Long
  }
  superuser {
    name          = "ris"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "a"
    port = 25432
  }
}
cluster "his" { # ERROR@1: Failsafe Needs a Reachable Listen Address
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "hisdb"
  failover {
    automatic = false
    ttl       = "soon" # ERROR@17: Invalid Duration
    failsafe  = true # WARNING@5: Failsafe Without Automatic Failover
  }
  superuser {
    name          = "his"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "a"
    port = 35432
  }
}
host "a" {
  address = "10.0.0.11"
}
daemon {
  etcd {
    endpoints = ["http://127.0.0.1:2379"]
  }
}
