cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = file("../secrets/ok.password") # ERROR: Error in Function Call
  network  = "${file("../secrets/open.password")}" # ERROR: Invalid Network Name
  superuser {
    name     = "pacs"
    password = env(file("../secrets/ok.password")) # ERROR: Error in Function Call
  }
  node "db1" {}
}
