# The superuser takes the name of the default replication user: with no
# replication.user written, the superuser's name is at fault.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "replicator" # ERROR@21: Replication User Is the Superuser
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
