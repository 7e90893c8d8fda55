cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name     = "pacs"
    password = env("PACSD_TEST_SURELY_UNSET") # ERROR: Error in Function Call
  }
  node "db1" {
    port = 15432
  }
}
