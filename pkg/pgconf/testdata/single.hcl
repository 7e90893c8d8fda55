# One node on the local engine: no standby, no replication password.
cluster "solo" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }

  node "db" {}
}
