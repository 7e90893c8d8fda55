# pacsd on every host, coordinated through etcd: three machines a, b and c,
# each running pacsd with this same file and an etcd member; one node of the
# cluster on each, synchronous replication and automatic failover.
# Validate with: pacsd validate -f examples/every-host.hcl
# On each machine, pacsd learns which host it is from --host or PACSD_HOST.

cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  primary  = "db1"
  database = "pacsdb"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }

  replication {
    password_file = "secrets/replicator.password"
    synchronous   = true # a commit waits for one standby: a cut-off primary acknowledges nothing
  }

  failover {
    automatic = true
    max_lag   = "16MB"
    after     = "3s"
    # The lease the pacsd of the primary's host holds in etcd. It renews the
    # lease every ttl/5 and fences its own primary when it has not renewed it
    # for half the ttl; a standby is promoted only after the lease expired.
    ttl = "10s"
  }

  # Every node names its host: the pacsd of that host runs it.
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
    host = "c"
    port = 15432
    data = "/var/local/mypacs/db"
  }
}

# No docker attribute: the pacsd of each host drives the engine of its own
# machine (DOCKER_HOST, else /var/run/docker.sock). The address is where the
# other hosts reach its published ports.
host "a" {
  address = "10.0.0.11"
}

host "b" {
  address = "10.0.0.12"
}

host "c" {
  address = "10.0.0.13"
}

daemon {
  # Every address: HAProxy's checks, Prometheus and the failsafe between
  # hosts reach each host's pacsd at the host's address. Off loopback pacsd
  # serves HTTPS only and asks every client but /healthz's for the token
  # (or a client certificate that client_ca signed).
  listen     = "0.0.0.0:9187"
  state_dir  = "/var/lib/pacsd"
  token_file = "secrets/pacsd-http.token" # mode 0600; make yours with: openssl rand -hex 32

  # pacsd's server certificate, for every host's address and 127.0.0.1
  # (pacsd status on the machine), and the CA that signed it, which pacsd
  # status and the pacsd of the other hosts verify it with. These are
  # examples: make your own.
  tls {
    cert = "secrets/pacsd-http.pem"
    key  = "secrets/pacsd-http-key.pem" # mode 0600
    ca   = "secrets/http-ca.pem"
  }

  etcd {
    endpoints = ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"]
    prefix    = "/pacsd"
    # The CA that signed the etcd members' certificates, and pacsd's client
    # certificate and key (mode 0600). These are examples: make your own.
    tls {
      ca   = "secrets/etcd-ca.pem"
      cert = "secrets/pacsd-etcd.pem"
      key  = "secrets/pacsd-etcd-key.pem"
    }
  }
}
