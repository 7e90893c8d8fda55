cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
  superuser {
    name     = "pacs"
    password = file("../secrets/open.password") # ERROR: Password File Readable by Others
  }
  replication {
    password = file("../secrets/multiline.password") # ERROR: Invalid Character in Password
  }
  role "viewer" {
    password = "x${file("../secrets/open.password")}" # ERROR: Error in Function Call
  }
  role "auditor" {
    password_file = "../secrets/multiline.password" # ERROR: Invalid Character in Password
  }
  role "reader" {
    password = file("../secrets/ok.password") # a trailing newline is dropped, as from password_file
  }
  node "db1" {
    port = 15432
  }
  node "db2" {
    port = 25432
  }
}
