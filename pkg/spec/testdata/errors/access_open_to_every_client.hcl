# Rules that admit every database and every user from every address, and
# that no reject rule before them narrows.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  access "archive" {
    database = "pacsdb"
    user     = "pacs"
    address  = "10.1.0.0/16"
  }
  access "everyone" {
    database = "all"
    user     = "all"
    address  = "all" # WARNING@16: Access Open to Every Client
    method   = "md5"
  }
  node "db1" {}
}
cluster "v6" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  access "everyone" {
    address = "::/0" # WARNING@15: Access Open to Every Client
  }
  node "db1" {
    port = 15433
  }
}
