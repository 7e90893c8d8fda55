# A primary on one machine and a standby on another, with automatic failover,
# and the pacsd daemon settings spelt out.
# Validate with: pacsd validate -f examples/multi-host.hcl

cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  primary  = "db1"
  database = "pacsdb"

  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }

  replication {
    password_file = "secrets/replicator.password" # user defaults to "replicator"
    synchronous   = true                          # a commit waits for one standby
  }

  settings = {
    shared_buffers = "1GB"
  }

  access "archive" {
    database = "pacsdb"
    user     = "pacs"
    address  = "10.1.0.0/16"
    method   = "scram-sha-256"
  }

  role "viewer" {
    login         = true
    password_file = "secrets/viewer.password"
  }

  failover {
    automatic = true
    max_lag   = "16MB"
    after     = "3s"
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
}

host "a" {
  docker  = "unix:///var/run/docker.sock" # the engine of the machine pacsd runs on
  address = "10.0.0.11"
}

host "b" {
  # The engine of b over ssh, as DOCKER_HOST=ssh://pacsd@10.0.0.12 is for the
  # docker CLI: pacsd logs in to b as pacsd (a user in b's docker group, which
  # is as good as root on b) and reaches b's /var/run/docker.sock through the
  # ssh connection; b needs no docker CLI, and its sshd needs stream and TCP
  # forwarding allowed (AllowStreamLocalForwarding, AllowTcpForwarding: yes by
  # default). Other forms: ssh://pacsd@10.0.0.12:2222/run/docker.sock (port
  # and socket), or tcp://10.0.0.12:2376 with a tls block.
  docker  = "ssh://pacsd@10.0.0.12"
  address = "10.0.0.12"

  # Optional. Paths are relative to this file and checked by validate.
  ssh {
    # The private key pacsd logs in with, alone: no passphrase, mode 0600
    # (ssh-keygen -t ed25519 -N '' -f secrets/pacsd_ssh_key, and its .pub into
    # ~pacsd/.ssh/authorized_keys on b). Left out: the keys of the ssh agent
    # of SSH_AUTH_SOCK, then ~/.ssh/id_ed25519, id_ecdsa and id_rsa.
    identity_file = "secrets/pacsd_ssh_key"
    # b's host key (default ~/.ssh/known_hosts); pacsd connects to no host
    # whose key is not there or has changed. Add it with
    # ssh-keyscan 10.0.0.12 >> secrets/known_hosts after checking that its
    # fingerprint is what ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub
    # shows on b.
    known_hosts = "secrets/known_hosts"
  }
}

daemon {
  listen    = "127.0.0.1:9187"
  state_dir = "/var/lib/pacsd"
  resync    = "30s"
}
