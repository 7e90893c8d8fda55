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
# daemon.tls is checked like the other tls blocks: cert and key required, PEM
# files relative to this file, the key readable by its owner only and
# belonging to the certificate; ca and client_ca are PEM certificates.
daemon {
  listen     = "[::]:9187"
  token_file = "../secrets/http.token"
  tls { # ERROR@7: Missing Required Argument
    cert      = "../secrets/tls-cert.pem"
    ca        = "certs/ca.pem" # ERROR@17: TLS CA File Not Found
    client_ca = "../secrets/ok.password" # ERROR@17: Invalid TLS CA File
  }
  tls { # ERROR@3: Duplicate TLS Block
    key = "../secrets/tls-key.pem"
  }
}
