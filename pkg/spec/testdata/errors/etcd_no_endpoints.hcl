cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }
  node "db1" {
    host = "a"
    port = 15432
  }
}
host "a" {
  address = "10.0.0.11"
}
daemon {
  etcd {
    endpoints = [] # ERROR@17: No Etcd Endpoints
    prefix    = "pacsd/" # ERROR@17: Invalid Etcd Prefix
  }
  etcd { # ERROR@3: Duplicate Etcd Block
    endpoints = ["http://127.0.0.1:2379"]
  }
}
