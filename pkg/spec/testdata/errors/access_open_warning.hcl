cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  access "archive" {
    address = "0.0.0.0/0" # WARNING@15: Access Open to Every Client
  }
  access "archive" { # ERROR: Duplicate Access Rule
    address = "::/0" # WARNING: Access Open to Every Address
  }
  node "db1" {
    port = 15432
  }
}
