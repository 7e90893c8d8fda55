# The demo topology that `make demo` runs: a primary and one streaming standby
# of the local image (built by `make image`), data in Docker volumes, the
# status endpoints on 127.0.0.1:9187. Edit and save this file while the demo
# runs, and pacsd converges the containers to it.

cluster "demo" {
  image    = "pacsd-postgres:15"
  primary  = "db1"
  database = "pacsdb"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }

  replication {
    user          = "replicator"
    password_file = "secrets/replicator.password"
  }

  settings = {
    shared_buffers      = "128MB"
    join_collapse_limit = 16
    from_collapse_limit = 16
  }

  clients {
    primary_alias = "db"
    standby_alias = "db-ro"
  }

  node "db1" {
    port = 15432
  }

  node "db2" {
    port = 25432
  }
}

daemon {
  listen    = "127.0.0.1:9187"
  state_dir = ".demo-state" # beside this file: examples/.demo-state
  resync    = "30s"
}
