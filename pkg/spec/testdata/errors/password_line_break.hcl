cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name     = "pacs"
    password = "first\nsecond" # ERROR: Invalid Character in Password
  }
  role "nul" {
    password = "a\u0000b" # ERROR: Invalid Character in Password
  }
  node "db1" {
    port = 15432
  }
}
