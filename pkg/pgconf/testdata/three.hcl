# A primary and two standbys, asynchronous, with settings that touch
# managed parameters (wal_level, max_wal_senders) and a version-bound one.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
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
    shared_buffers      = "256MB"
    join_collapse_limit = 16
    from_collapse_limit = 16
    wal_level           = "logical"
    max_wal_senders     = 20
    TimeZone            = "Europe/Vienna"
    jit                 = false
    random_page_cost    = 1.1
    application_name    = "it's \\ odd"
  }

  node "db1" {}
  node "db2" {}
  node "db3" {}
}
