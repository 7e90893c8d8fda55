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
host "b" {
  docker  = "tcp://10.0.0.12:2375" # ERROR: Docker Endpoint Without TLS
  address = "10.0.0.12:22" # ERROR: Invalid Host Address
}
host "c" {
  docker  = "tcp://engine.example.org:2375" # ERROR: Docker Endpoint Without TLS
  address = "10.0.0.13"
}
host "d" {
  docker  = "tcp://127.0.0.1:2375" # WARNING: Unencrypted Docker Endpoint
  address = "127.0.0.1"
}
host "e" {
  docker  = "tcp://localhost:2375" # WARNING: Unencrypted Docker Endpoint
  address = "127.0.0.1"
}
host "f" {
  docker  = "tcp://" # ERROR: Invalid Docker Endpoint
  address = "127.0.0.1"
}
host "g" {
  docker  = "unix://var/run/docker.sock" # ERROR: Invalid Docker Endpoint
  address = "127.0.0.1"
}
