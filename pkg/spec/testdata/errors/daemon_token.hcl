cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
# A token file is a secret: mode 0600, not empty, one line of at least 32
# printable characters. On loopback a token is optional, and honoured.
daemon {
  listen     = "127.0.0.1:9187"
  token_file = "../secrets/short.token" # ERROR@16: Token Too Short
}
