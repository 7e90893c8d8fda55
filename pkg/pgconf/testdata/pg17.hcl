# PostgreSQL 17 (the local image's tag says so): parameters removed in 17
# are left out, one new in 17 is written.
cluster "new" {
  image    = "pacsd-postgres:17"
  database = "pacsdb"
  primary  = "db1"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }

  replication {
    password_file = "secrets/replicator.password"
  }

  settings = {
    old_snapshot_threshold  = 60
    trace_recovery_messages = "log"
    db_user_namespace       = false
    transaction_timeout     = "5min"
    summarize_wal           = true
  }

  node "db1" {}
  node "db2" {}
}
