cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  settings = {
    wal_keep_segments   = 8 # ERROR: Removed Parameter
    checkpoint_segments = 8 # ERROR: Removed Parameter
    wal_level           = "minimal" # ERROR: Invalid Parameter Value
  }
  node "db1" {}
}
