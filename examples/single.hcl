# One PostgreSQL container for a dcm4chee archive: the first step of the
# image's README ("start a postgres instance"), without the password in the
# environment. Validate with: pacsd validate -f examples/single.hcl

cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password" # mode 0600: chmod 600 examples/secrets/*
  }

  node "db" {
    port = 15432
    data = "/var/local/mypacs/db"
  }
}
