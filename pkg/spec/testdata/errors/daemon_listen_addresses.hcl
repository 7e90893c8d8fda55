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
# A listen address off loopback needs TLS: the token would travel in clear.
daemon {
  listen     = "10.0.0.5:9187" # ERROR@16: HTTP Endpoint Without TLS
  token_file = "../secrets/http.token"
}
