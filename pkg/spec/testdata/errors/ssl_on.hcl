# The topology file cannot give the server a certificate yet.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  settings = {
    ssl = "on" # ERROR@11: Invalid Parameter Value
  }
  node "db1" {}
}
cluster "other" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  settings = {
    SSL = true # ERROR@11: Invalid Parameter Value
  }
  node "db1" {
    port = 15433
  }
}
