# PostgreSQL 12 has no max_slot_wal_keep_size.
cluster "old" {
  image    = "postgres:12"
  database = "pacsdb"
  primary  = "db1"

  superuser {
    name          = "all"
    password_file = "secrets/pacs.password"
  }

  replication {
    password_file = "secrets/replicator.password"
  }

  node "db1" {}
  node "db2" {}
}
