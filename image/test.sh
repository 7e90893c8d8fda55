#!/usr/bin/env bash
# Checks the image built by image/build.sh against its contract (image/README.md).
#
# Usage: bash image/test.sh [IMAGE]      (default: $PACSD_IMAGE or pacsd-postgres:15)
#
# Needs a Docker engine and psql on this machine. Every container and volume it
# makes carries the labels io.pacsd.test=image and io.pacsd.test.run=<run id>
# and is removed on exit, failure or interrupt included. Exits non-zero when any
# check fails.
set -Eeuo pipefail

IMAGE=${1:-${PACSD_IMAGE:-pacsd-postgres:15}}
# The PostgreSQL major version the image must run: the number its tag starts with.
MAJOR=${IMAGE##*/}
case $MAJOR in *:*) MAJOR=${MAJOR#*:} ;; *) MAJOR="" ;; esac
MAJOR=${MAJOR%%[!0-9]*}
RUN=$(date +%s)-$$
PREFIX=pacsd-imgtest-$$
LABELS=(--label io.pacsd.test=image --label "io.pacsd.test.run=$RUN")
# A network of its own: the test does not depend on the engine's default bridge.
NET=$PREFIX-net
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pacsd-imgtest.XXXXXX")
FAILS=0
PASSES=0

log() { printf 'image-test: %s\n' "$*" >&2; }
pass() { PASSES=$((PASSES + 1)); printf 'image-test: ok    %s\n' "$*" >&2; }
fail() { FAILS=$((FAILS + 1)); printf 'image-test: FAIL  %s\n' "$*" >&2; }
check() { # check "description" command...: passes when the command succeeds
  local what=$1; shift
  if "$@" >"$TMP/out" 2>&1; then pass "$what"; else fail "$what"; sed 's/^/image-test:       /' "$TMP/out" >&2; fi
}

cleanup() {
  local ids
  ids=$(docker ps -aq --filter label=io.pacsd.test=image --filter "label=io.pacsd.test.run=$RUN" 2>/dev/null || true)
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
  ids=$(docker volume ls -q --filter label=io.pacsd.test=image --filter "label=io.pacsd.test.run=$RUN" 2>/dev/null || true)
  [ -z "$ids" ] || docker volume rm -f $ids >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v psql >/dev/null 2>&1 || { log "psql is not installed on this machine (Debian: postgresql-client)"; exit 1; }
[ -n "$MAJOR" ] || { log "the tag of $IMAGE does not name a PostgreSQL major version (such as pacsd-postgres:17)"; exit 1; }
docker info >/dev/null 2>&1 || { log "no Docker engine answers"; exit 1; }
docker network create "${LABELS[@]}" "$NET" >/dev/null
docker image inspect "$IMAGE" >/dev/null 2>&1 || { log "image $IMAGE is missing; build it with 'make image'"; exit 1; }

PASSWORD="pw-$RUN-$RANDOM\$'\"; x"   # quotes and a dollar on purpose
PW2="other-$RANDOM"

volume() { docker volume create "${LABELS[@]}" "$PREFIX-$1" >/dev/null; echo "$PREFIX-$1"; }

# A volume holding a password file that only root may read (mode 0600, uid 0),
# filled with docker cp so that the test also works with a remote engine.
SECRETS=$(volume secrets)
printf '%s\n' "$PASSWORD" >"$TMP/pw"
printf '%s' "$PW2" >"$TMP/pw2"
chmod 0600 "$TMP/pw" "$TMP/pw2"
docker create "${LABELS[@]}" --name "$PREFIX-filler" -v "$SECRETS:/secrets" --entrypoint true "$IMAGE" >/dev/null
docker cp "$TMP/pw" "$PREFIX-filler:/secrets/pacs.password"
docker cp "$TMP/pw2" "$PREFIX-filler:/secrets/other.password"
docker rm "$PREFIX-filler" >/dev/null

# wait_tcp CONTAINER PASSWORD: until psql over the published port answers (at most 60 s).
port_of() { docker port "$1" 5432/tcp | head -1 | sed 's/.*://'; }
sql() { # sql CONTAINER PASSWORD QUERY [USER] [DB]: one query over TCP, unaligned output
  PGPASSWORD=$2 PGCONNECT_TIMEOUT=5 psql -X -w -h 127.0.0.1 -p "$(port_of "$1")" \
    -U "${4:-pacs}" -d "${5:-pacsdb}" -v ON_ERROR_STOP=1 -tA -c "$3"
}
wait_tcp() {
  local i
  for i in $(seq 1 120); do
    if sql "$1" "$2" 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    if [ "$(docker inspect -f '{{.State.Running}}' "$1")" != true ]; then
      log "container $1 stopped:"; docker logs "$1" 2>&1 | tail -20 >&2; return 1
    fi
    sleep 0.5
  done
  log "container $1 did not answer over TCP within 60s:"; docker logs "$1" 2>&1 | tail -20 >&2
  return 1
}
# run_once NAME ARGS...: run a container to its end; prints its exit code; logs in $TMP/NAME.log
run_once() {
  local name=$PREFIX-$1; shift
  docker run "${LABELS[@]}" --network "$NET" --name "$name" "$@" >"$TMP/$name.log" 2>&1 || true
  docker inspect -f '{{.State.ExitCode}}' "$name"
}

log "testing $IMAGE, PostgreSQL $MAJOR (run $RUN)"

# --- image configuration -----------------------------------------------------------
cfg() { docker image inspect -f "$1" "$IMAGE"; }
check "label io.pacsd.pg-major is $MAJOR" test "$(cfg '{{index .Config.Labels "io.pacsd.pg-major"}}')" = "$MAJOR"
check "label io.pacsd.recipe is set" test -n "$(cfg '{{index .Config.Labels "io.pacsd.recipe"}}')"
check "env PG_MAJOR=$MAJOR and PG_VERSION set" bash -c "cfg=\$(docker image inspect -f '{{json .Config.Env}}' '$IMAGE'); grep -q '\"PG_MAJOR=$MAJOR\"' <<<\"\$cfg\" && grep -q '\"PG_VERSION=$MAJOR\.' <<<\"\$cfg\""
check "stop signal is SIGINT" test "$(cfg '{{.Config.StopSignal}}')" = SIGINT
check "port 5432 exposed, no VOLUME" test "$(cfg '{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}')" = '{"5432/tcp":{}}|null'
check "tools on PATH (postgres pg_ctl pg_basebackup pg_rewind initdb pg_controldata)" \
  docker run --rm "${LABELS[@]}" --network none "$IMAGE" bash -c \
  'for t in postgres pg_ctl pg_basebackup pg_rewind initdb pg_controldata psql; do command -v $t >/dev/null || { echo "missing $t"; exit 1; }; done'
check "a non-postgres command runs as given (pg_basebackup --version)" \
  bash -c "docker run --rm ${LABELS[*]} --network none '$IMAGE' pg_basebackup --version | grep -q 'pg_basebackup (PostgreSQL) $MAJOR\.'"

# --- first start: initialisation from POSTGRES_PASSWORD_FILE ---------------------------
DATA=$(volume data)
C1=$PREFIX-db
docker run -d "${LABELS[@]}" --network "$NET" --name "$C1" -p 127.0.0.1::5432 \
  -e POSTGRES_USER=pacs -e POSTGRES_DB=pacsdb -e POSTGRES_PASSWORD_FILE=/secrets/pacs.password \
  -v "$SECRETS:/secrets:ro" -v "$DATA:/var/lib/postgresql/data" \
  "$IMAGE" postgres -c max_connections=42 >/dev/null
if wait_tcp "$C1" "$PASSWORD"; then pass "initialises from POSTGRES_PASSWORD_FILE (root-only file) and answers over TCP"; else fail "first start"; fi

check "user pacs is a superuser, database pacsdb exists" \
  test "$(sql "$C1" "$PASSWORD" "SELECT current_user || '/' || current_database() || '/' || rolsuper FROM pg_roles WHERE rolname = current_user")" = pacs/pacsdb/true
check "password is stored as a SCRAM verifier" \
  test "$(sql "$C1" "$PASSWORD" "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'pacs'")" = 'SCRAM-SHA-256$'
check "postgres arguments pass through (-c max_connections=42)" test "$(sql "$C1" "$PASSWORD" 'SHOW max_connections')" = 42
check "listen_addresses='*', password_encryption=scram-sha-256" \
  test "$(sql "$C1" "$PASSWORD" "SELECT current_setting('listen_addresses') || ' ' || current_setting('password_encryption')")" = '* scram-sha-256'
check "schema: tables patient, study, series, instance" \
  test "$(sql "$C1" "$PASSWORD" "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")" = instance,patient,series,study
check "schema: three foreign keys, tables empty" \
  test "$(sql "$C1" "$PASSWORD" "SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace) || '/' || (SELECT count(*) FROM patient) + (SELECT count(*) FROM study) + (SELECT count(*) FROM series) + (SELECT count(*) FROM instance)")" = 3/0
check "schema: rows insert along the keys" sql "$C1" "$PASSWORD" "
  WITH p AS (INSERT INTO patient (pat_id, pat_name) VALUES ('P1', 'Doe^Jane') RETURNING pk),
       s AS (INSERT INTO study (patient_fk, study_iuid) SELECT pk, '1.2.3' FROM p RETURNING pk),
       r AS (INSERT INTO series (study_fk, series_iuid, modality) SELECT pk, '1.2.3.4', 'CT' FROM s RETURNING pk)
  INSERT INTO instance (series_fk, sop_iuid, sop_cuid, storage_path, object_size)
  SELECT pk, '1.2.3.4.5', '1.2.840.10008.5.1.4.1.1.2', 'aa/bb/cc', 1024 FROM r"
check "schema: a foreign key violation is refused" \
  bash -c "! PGPASSWORD=\"\$1\" psql -X -w -h 127.0.0.1 -p $(port_of "$C1") -U pacs -d pacsdb -v ON_ERROR_STOP=1 -c \"INSERT INTO study (patient_fk, study_iuid) VALUES (424242, 'x')\"" _ "$PASSWORD"
check "TCP with a wrong password fails" bash -c "! PGPASSWORD=wrong PGCONNECT_TIMEOUT=5 psql -X -w -h 127.0.0.1 -p $(port_of "$C1") -U pacs -d pacsdb -c 'SELECT 1'"
check "TCP without a password fails" bash -c "! env -u PGPASSWORD PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=5 psql -X -w -h 127.0.0.1 -p $(port_of "$C1") -U pacs -d pacsdb -c 'SELECT 1'"
check "pg_hba.conf: local trust, no trust on host lines" bash -c \
  "hba=\$(docker exec '$C1' grep -Ev '^\s*(#|\$)' /var/lib/postgresql/data/pg_hba.conf); grep -Eq '^local\s+all\s+all\s+trust' <<<\"\$hba\" && grep -Eq '^host\s+all\s+all\s+all\s+scram-sha-256' <<<\"\$hba\" && ! grep -E '^host' <<<\"\$hba\" | grep -q trust"
check "the socket inside the container is trusted" test "$(docker exec "$C1" psql -X -U pacs -d pacsdb -tAc 'SELECT 1')" = 1
check "postgres runs as the postgres user (uid 999), PID 1" \
  test "$(docker exec "$C1" sh -c 'stat -c %U /proc/1; tr "\0" " " </proc/1/cmdline')" = "$(printf 'postgres\npostgres -c max_connections=42 ')"
check "the postgres account is uid 999, gid 999 (as in the official image)" \
  test "$(docker exec "$C1" sh -c 'echo "$(id -u postgres):$(id -g postgres)"')" = 999:999
check "PGDATA owned by postgres, mode 0700" test "$(docker exec "$C1" stat -c '%U %a' /var/lib/postgresql/data)" = 'postgres 700'
check "the password is not in docker inspect" bash -c \
  "out=\$(docker inspect '$C1') && grep -q POSTGRES_PASSWORD_FILE <<<\"\$out\" && ! grep -qF -- \"\$1\" <<<\"\$out\"" _ "$PASSWORD"
check "the password is not in docker logs (which hold the server log)" bash -c \
  "logs=\$(docker logs '$C1' 2>&1) && grep -q 'database system is ready' <<<\"\$logs\" && ! grep -qF -- \"\$1\" <<<\"\$logs\"" _ "$PASSWORD"
check "the password is not in the server's environment" bash -c \
  "env=\$(docker exec -u postgres '$C1' cat /proc/1/environ | tr '\\0' '\\n') && grep -q '^PGDATA=' <<<\"\$env\" && ! grep -qF -- \"\$1\" <<<\"\$env\"" _ "$PASSWORD"

# --- restart on the same data: no second initialisation ----------------------------------
t0=$SECONDS
docker stop -t 30 "$C1" >/dev/null
check "docker stop shuts down fast (SIGINT) with exit code 0 in $((SECONDS - t0))s" \
  test "$(docker inspect -f '{{.State.ExitCode}}' "$C1")" = 0
C2=$PREFIX-db2
docker run -d "${LABELS[@]}" --network "$NET" --name "$C2" -p 127.0.0.1::5432 \
  -e POSTGRES_USER=pacs -e POSTGRES_DB=pacsdb -e POSTGRES_PASSWORD_FILE=/secrets/other.password \
  -v "$SECRETS:/secrets:ro" -v "$DATA:/var/lib/postgresql/data" "$IMAGE" >/dev/null
if wait_tcp "$C2" "$PASSWORD"; then pass "an existing PGDATA is used as is (old password still valid)"; else fail "restart on existing PGDATA"; fi
check "no initialisation on the second start" bash -c "docker logs '$C2' 2>&1 | grep -q 'skipping initialisation' && ! docker logs '$C2' 2>&1 | grep -qE 'initdb|initialising'"
check "the rows written before are still there" test "$(sql "$C2" "$PASSWORD" 'SELECT count(*) FROM instance')" = 1
check "the new password file did not change the password" bash -c "! PGPASSWORD='$PW2' PGCONNECT_TIMEOUT=5 psql -X -w -h 127.0.0.1 -p $(port_of "$C2") -U pacs -d pacsdb -c 'SELECT 1'"
docker rm -f "$C2" >/dev/null

# --- refusals --------------------------------------------------------------------------
EMPTY=$(volume empty)
code=$(run_once nopw -e POSTGRES_USER=pacs -v "$EMPTY:/var/lib/postgresql/data" "$IMAGE")
check "no password: refused with exit code $code" test "$code" != 0
check "no password: a clear message" grep -q 'no superuser password is given' "$TMP/$PREFIX-nopw.log"
check "no password: nothing initialised" test -z "$(docker run --rm "${LABELS[@]}" --network none -v "$EMPTY:/d" --entrypoint ls "$IMAGE" -A /d)"

JUNK=$(volume junk)
docker run --rm "${LABELS[@]}" --network none -v "$JUNK:/d" --entrypoint touch "$IMAGE" /d/unrelated-file
code=$(run_once junk -e POSTGRES_PASSWORD_FILE=/secrets/pacs.password -v "$SECRETS:/secrets:ro" -v "$JUNK:/var/lib/postgresql/data" "$IMAGE")
check "non-empty PGDATA without PG_VERSION: refused with exit code $code" test "$code" != 0
check "non-empty PGDATA without PG_VERSION: a clear message" grep -q 'holds no PG_VERSION' "$TMP/$PREFIX-junk.log"

code=$(run_once both -e POSTGRES_PASSWORD=x -e POSTGRES_PASSWORD_FILE=/secrets/pacs.password -v "$SECRETS:/secrets:ro" "$IMAGE")
check "POSTGRES_PASSWORD with POSTGRES_PASSWORD_FILE: refused ($code)" \
  bash -c "test '$code' != 0 && grep -q 'both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set' '$TMP/$PREFIX-both.log'"
code=$(run_once trust -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_PASSWORD_FILE=/secrets/pacs.password -v "$SECRETS:/secrets:ro" "$IMAGE")
check "POSTGRES_HOST_AUTH_METHOD=trust: refused ($code)" \
  bash -c "test '$code' != 0 && grep -q 'trust is refused' '$TMP/$PREFIX-trust.log'"

# --- defaults, options first, own init scripts, PGDATA in a subdirectory ----------------------
INITDB=$(volume initdb)
printf 'CREATE TABLE from_sql_gz (x int);\n' | gzip >"$TMP/20-extra.sql.gz"
cat >"$TMP/30-sourced.sh" <<'EOF'
# sourced (not executable): sees the entrypoint's variables
psql -v ON_ERROR_STOP=1 -X -U "$POSTGRES_USER" -d "$POSTGRES_DB" -qc "CREATE TABLE from_sourced_sh (pw_len int); INSERT INTO from_sourced_sh VALUES (${#POSTGRES_PASSWORD})"
EOF
cat >"$TMP/40-executed.sh" <<'EOF'
#!/bin/bash
set -eu
psql -v ON_ERROR_STOP=1 -X -U "$POSTGRES_USER" -d "$POSTGRES_DB" -qc "CREATE TABLE from_executed_sh (setting text); INSERT INTO from_executed_sh SELECT current_setting('shared_buffers')"
EOF
chmod 0644 "$TMP/20-extra.sql.gz" "$TMP/30-sourced.sh"
chmod 0755 "$TMP/40-executed.sh"
docker create "${LABELS[@]}" --name "$PREFIX-filler2" -v "$INITDB:/i" --entrypoint true "$IMAGE" >/dev/null
for f in 20-extra.sql.gz 30-sourced.sh 40-executed.sh; do docker cp "$TMP/$f" "$PREFIX-filler2:/i/$f"; done
docker rm "$PREFIX-filler2" >/dev/null

C3=$PREFIX-defaults
docker run -d "${LABELS[@]}" --network "$NET" --name "$C3" -p 127.0.0.1::5432 -e PGDATA=/var/lib/postgresql/data/pgdata \
  -e POSTGRES_PASSWORD_FILE=/secrets/pacs.password -v "$SECRETS:/secrets:ro" \
  -v "$INITDB:/docker-entrypoint-initdb.d:ro" "$IMAGE" -c shared_buffers=24MB >/dev/null
wait_default() {
  local i
  for i in $(seq 1 120); do
    sql "$C3" "$PASSWORD" 'SELECT 1' postgres postgres >/dev/null 2>&1 && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$C3")" = true ] || break
    sleep 0.5
  done
  docker logs "$C3" 2>&1 | tail -20 >&2
  return 1
}
if wait_default; then
  pass "defaults: user and database postgres, PGDATA in a subdirectory, options first (-c ...)"
  check "init scripts: *.sql.gz, sourced *.sh, executed *.sh ran, with the server's options" \
    test "$(sql "$C3" "$PASSWORD" "SELECT (SELECT count(*) FROM from_sql_gz) || '/' || (SELECT pw_len FROM from_sourced_sh) || '/' || (SELECT setting FROM from_executed_sh) || '/' || current_setting('shared_buffers')" postgres postgres)" = "0/${#PASSWORD}/24MB/24MB"
else
  fail "defaults"
fi

# --- started as the postgres user instead of root ---------------------------------------------
C4=$PREFIX-asuser
docker run -d "${LABELS[@]}" --network "$NET" --name "$C4" -p 127.0.0.1::5432 --user postgres \
  -e POSTGRES_USER=pacs -e POSTGRES_DB=pacsdb -e POSTGRES_PASSWORD="$PW2" "$IMAGE" >/dev/null
if wait_tcp "$C4" "$PW2"; then pass "started with --user postgres: initialises and runs"; else fail "started with --user postgres"; fi

log "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
