# pacsd on every host, coordinated through etcd: every node names a host,
# the hosts leave docker out (each pacsd drives its own engine), and the
# etcd prefix and the failover ttl keep their defaults.
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"

  superuser {
    name          = "pacs"
    password_file = "../secrets/ok.password"
  }

  replication {
    password_file = "../secrets/ok.password"
    synchronous   = true
  }

  failover {
    automatic = true
  }

  node "db1" {
    host = "a"
    port = 15432
    data = "/var/local/mypacs/db"
  }

  node "db2" {
    host = "b"
    port = 15432
    data = "/var/local/mypacs/db"
  }

  node "db3" {
    host = "a"
    port = 25432
    data = "/var/local/mypacs/db3"
  }
}

host "a" {
  address = "10.0.0.11"
}

host "b" {
  docker  = "unix:///var/run/docker.sock"
  address = "10.0.0.12"
}

daemon {
  etcd {
    endpoints = ["https://10.0.0.11:2379", "https://[fd00::12]:2379", "https://etcd-3.example.org:2379"]
    tls {
      ca   = "../secrets/tls-ca.pem"
      cert = "../secrets/tls-cert.pem"
      key  = "../secrets/tls-key.pem"
    }
  }
}
