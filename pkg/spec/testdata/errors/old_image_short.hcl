cluster "pacs" {
  image    = "registry.example.org:5000/pg/postgres:9.6" # ERROR: Unsupported PostgreSQL Version
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
