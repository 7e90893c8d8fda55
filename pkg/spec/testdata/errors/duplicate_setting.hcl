cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  settings = {
    work_mem = "4MB"
    WORK_MEM = "8MB" # ERROR: Duplicate Setting
  }
  node "db1" {
    port = 15432
  }
}
