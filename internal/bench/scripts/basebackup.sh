#!/usr/bin/env bash
# A bare pg_basebackup of a primary into an empty volume, as an operator runs
# it by hand: one one-off container of the image, the passfile placed beside
# PGDATA, -X stream and a fast checkpoint (as pacsd asks for), nothing else:
# no slot, no standby start. It is the baseline of building a standby.
#
# Environment: IMAGE, NETWORK (the primary's network), HOST (the primary's
# name on it), VOLUME (an empty volume), NAME (the one-off container), LABEL
# (key=value put on it), SECRETS (a directory holding replication.pgpass,
# mode 0600). Prints "bench-step <unix nanoseconds> pg_basebackup" first.
set -Eeuo pipefail
: "${IMAGE:?}" "${NETWORK:?}" "${HOST:?}" "${VOLUME:?}" "${NAME:?}" "${LABEL:?}" "${SECRETS:?}"

printf 'bench-step %s %s\n' "$(date +%s%N)" pg_basebackup
docker run --rm --label "$LABEL" --network "$NETWORK" --name "$NAME" \
  -e HOST="$HOST" \
  -v "$SECRETS/replication.pgpass:/run/secrets/replication.pgpass:ro" \
  -v "$VOLUME:/var/lib/postgresql" \
  "$IMAGE" bash -ec 'install -o postgres -g postgres -m 0600 /run/secrets/replication.pgpass /var/lib/postgresql/replication.pgpass
exec runuser -u postgres -- env PGPASSFILE=/var/lib/postgresql/replication.pgpass \
  pg_basebackup -h "$HOST" -p 5432 -U replicator -w -D "$PGDATA" -X stream -c fast'
