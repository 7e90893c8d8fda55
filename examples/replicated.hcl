# The image README's master/slave replication on one Docker engine, the modern
# way: scram-sha-256 instead of trust, a replication slot per standby,
# standby.signal instead of recovery.conf, pg_rewind on failover.
# Validate with: pacsd validate -f examples/replicated.hcl

cluster "mypacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  primary  = "master" # edit to switch over
  database = "pacsdb"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }

  replication {
    user          = "replicator"
    password_file = "secrets/replicator.password"
    max_slot_wal  = "4GB"
  }

  settings = {
    shared_buffers      = "256MB"
    join_collapse_limit = 16
    from_collapse_limit = 16
  }

  # The archive container joins the network "mypacs" and connects to "db".
  clients {
    primary_alias = "db"
    standby_alias = "db-ro"
  }

  failover {
    automatic = false # pacsd never promotes on its own; see max_lag and after
    max_lag   = "16MB"
    after     = "10s"
  }

  node "master" {
    port = 15432
    data = "/var/local/mypacs/db"
  }

  node "slave" {
    port = 25432
    data = "/var/local/mypacs/slave_db"
  }
}
