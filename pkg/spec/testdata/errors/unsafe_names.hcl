cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacs;db" # ERROR: Invalid Name
  primary  = "db1"
  superuser {
    name          = "pacs`id`" # ERROR: Invalid Name
    password_file = "../secrets/ok.password"
  }
  replication {
    user          = "rep$(id>/tmp/x)" # ERROR: Invalid Name
    password_file = "../secrets/ok.password"
  }
  access "archive" {
    database = "pacsdb"
    user     = "pacs\\x" # ERROR: Invalid Name
    address  = "10.1.0.0/16"
  }
  role "view|er" { # ERROR: Invalid Name
  }
  role "9viewer" { # ERROR: Invalid Name
  }
  role "reader" {
    member_of = ["pg_read_all_data", "a/b"] # ERROR: Invalid Name
  }
  node "db1" {
    port = 15432
  }
  node "db2" {
    port = 25432
  }
}
