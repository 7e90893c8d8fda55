# failover.ttl and failover.failsafe are about the lease pacsd holds in etcd:
# without daemon.etcd they change nothing.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  failover {
    automatic = false
    ttl       = "10s" # WARNING@5: Failover Setting Without Etcd
    failsafe  = true # WARNING@5: Failover Setting Without Etcd
  }
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
cluster "ris" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "risdb"
  failover {
    max_lag  = "1MB"
    failsafe = false # WARNING@5: Failover Setting Without Etcd
  }
  superuser {
    name          = "ris"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 25432
  }
}
