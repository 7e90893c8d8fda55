# pacsd keeps ssl on itself, with the certificates it places (tls block).
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  settings = {
    ssl = "on" # ERROR@5: Parameter Managed by pacsd
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
    SSL = true # ERROR@5: Parameter Managed by pacsd
  }
  node "db1" {
    port = 15433
  }
}
