cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name     = "pacs"
    password = "pacsword" # WARNING: Password Written in the File
  }
  role "viewer" {
    password = "" # ERROR: Empty Password
  }
  node "db1" {
    port = 15432
  }
}
