cluster "pacs" {
  image    = "postgres:11.22-bookworm" # ERROR: Unsupported PostgreSQL Version
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
