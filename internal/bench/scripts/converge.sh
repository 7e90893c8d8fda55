#!/usr/bin/env bash
# The seed's primary/standby setup (postgres-dcm4chee README, "Setup
# Master/Slave Replication") done by hand as fast as an operator's script does
# it, with the modern equivalents pacsd uses: scram-sha-256 instead of trust,
# a physical slot for the standby, pg_basebackup -X stream -R (standby.signal
# and primary_conninfo) instead of -x and recovery.conf, passwords in files.
#
#   1. start the primary and wait until it accepts TCP connections;
#   2. open pg_hba.conf and postgresql.conf for replication;
#   3. restart the primary and wait until it accepts TCP connections;
#   4. create the replication role and the standby's slot;
#   5. pg_basebackup the standby's volume in a one-off container;
#   6. start the standby (the caller waits until it streams).
#
# Readiness is polled with pg_isready over TCP (the entrypoint's init-time
# server listens on its socket only, and a restart sent to it would wait for
# the stop timeout), never with a fixed sleep. Each step prints
# "bench-step <unix nanoseconds> <name>" when it begins.
#
# Environment: IMAGE, PREFIX (names: PREFIX-net, PREFIX-db1, PREFIX-db2 and
# their -data volumes), LABEL (key=value put on every object), SECRETS (a
# directory holding superuser.password, replication.password and
# replication.pgpass, each mode 0600).
set -Eeuo pipefail
: "${IMAGE:?}" "${PREFIX:?}" "${LABEL:?}" "${SECRETS:?}"

step() { printf 'bench-step %s %s\n' "$(date +%s%N)" "$*"; }

net=$PREFIX-net
p=$PREFIX-db1
s=$PREFIX-db2
run=(docker run -d --label "$LABEL" --network "$net"
  -e POSTGRES_USER=pacs -e POSTGRES_DB=pacsdb
  -e POSTGRES_PASSWORD_FILE=/run/secrets/superuser.password
  -v "$SECRETS/superuser.password:/run/secrets/superuser.password:ro")

# ready CONTAINER: wait until its server accepts connections over TCP.
ready() {
  local ip
  ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1")
  if command -v pg_isready >/dev/null; then
    until pg_isready -q -t 1 -h "$ip" -p 5432; do sleep 0.02; done
  else
    until docker exec "$1" pg_isready -q -t 1 -h 127.0.0.1 -p 5432; do sleep 0.02; done
  fi
}

step prepare
docker network create --label "$LABEL" "$net" >/dev/null
docker volume create --label "$LABEL" "$p-data" >/dev/null
docker volume create --label "$LABEL" "$s-data" >/dev/null

step start primary
"${run[@]}" --name "$p" --network-alias db1 -v "$p-data:/var/lib/postgresql" "$IMAGE" >/dev/null
ready "$p"

step configure replication
docker exec -i -u postgres "$p" bash -ec 'cat >>"$PGDATA/pg_hba.conf" <<HBA
host replication replicator samenet scram-sha-256
HBA
cat >>"$PGDATA/postgresql.conf" <<CONF
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_log_hints = on
CONF'

step restart primary
docker restart "$p" >/dev/null
ready "$p"

step create role and slot
# The password goes through stdin: never on a command line or in exec events.
{
  printf "CREATE ROLE replicator REPLICATION LOGIN PASSWORD '%s';\n" "$(sed "s/'/''/g" "$SECRETS/replication.password")"
  printf "SELECT pg_create_physical_replication_slot('db2');\n"
} | docker exec -i -u postgres "$p" psql -q -v ON_ERROR_STOP=1 -U pacs -d pacsdb >/dev/null

step pg_basebackup
# The passfile goes beside PGDATA, owned by postgres: -R names it in
# primary_conninfo, so the standby finds it on its own volume.
docker run --rm --label "$LABEL" --network "$net" --name "$s-basebackup" \
  -v "$SECRETS/replication.pgpass:/run/secrets/replication.pgpass:ro" \
  -v "$s-data:/var/lib/postgresql" \
  "$IMAGE" bash -ec 'install -o postgres -g postgres -m 0600 /run/secrets/replication.pgpass /var/lib/postgresql/replication.pgpass
exec runuser -u postgres -- env PGPASSFILE=/var/lib/postgresql/replication.pgpass \
  pg_basebackup -h db1 -p 5432 -U replicator -w -D "$PGDATA" -X stream -S db2 -R'

step start standby
"${run[@]}" --name "$s" --network-alias db2 -v "$s-data:/var/lib/postgresql" "$IMAGE" >/dev/null
