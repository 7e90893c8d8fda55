# The least a cluster needs; the golden file shows every default pacsd fills in.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"

  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }

  node "db" {}
}
