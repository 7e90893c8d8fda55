# Three standbys need four WAL senders (one each, and one more for
# pg_basebackup) and three replication slots.
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
  settings = {
    max_wal_senders       = 3 # ERROR@29: Too Few WAL Senders
    max_replication_slots = "2" # ERROR@29: Too Few Replication Slots
  }
  node "db1" {}
  node "db2" {}
  node "db3" {}
  node "db4" {}
}
