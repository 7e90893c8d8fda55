#!/usr/bin/env bash
# The demo: a Docker engine (started when none answers), pacsd and the local
# image (built when missing), then the daemon on examples/demo.hcl until
# Ctrl-C. Stopping pacsd never stops the database containers; remove them
# with 'make demo-clean'.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/engine.sh
make --no-print-directory build image
chmod 600 examples/secrets/*      # git does not keep file modes; pacsd refuses readable password files

file=examples/demo.hcl
bin/pacsd validate -f "$file" >/dev/null
echo "demo: starting 'pacsd run -f $file' (status on http://127.0.0.1:9187/status)"
bin/pacsd run -f "$file" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM

for _ in $(seq 1 180); do
  if curl -fsS http://127.0.0.1:9187/readyz >/dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2>/dev/null; then echo "demo: pacsd exited; see its log above" >&2; exit 1; fi
  sleep 1
done

cat <<TXT

demo: converged. The primary, as pg_stat_replication sees its standby:
$(docker exec demo-db1 psql -XAtq -U pacs -d pacsdb -c "SELECT application_name || ': ' || state || ', sync ' || sync_state FROM pg_stat_replication")
The standby (db2), in recovery and streaming:
$(docker exec demo-db2 psql -XAtq -U pacs -d pacsdb -c "SELECT 'in recovery: ' || pg_is_in_recovery() || ', WAL receiver: ' || coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')")

Try it:
  psql "host=127.0.0.1 port=15432 user=pacs dbname=pacsdb"     # password: examples/secrets/pacs.password
  docker rm -f demo-db2                                         # pacsd puts the standby back
  edit settings in examples/demo.hcl and save                   # pacsd reloads or restarts as needed
  curl -s http://127.0.0.1:9187/status
Ctrl-C stops pacsd (the containers keep running); 'make demo-clean' removes them.
TXT
wait $pid
