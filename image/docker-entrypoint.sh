#!/usr/bin/env bash
# Entrypoint of pacsd-postgres, with the official postgres image's contract:
#
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default:
#   the user), each also as <VAR>_FILE (a file holding the value; setting both is
#   an error); PGDATA (default /var/lib/postgresql/data); POSTGRES_INITDB_ARGS;
#   POSTGRES_HOST_AUTH_METHOD (scram-sha-256, the default, or md5; never trust).
#
# `postgres [ARGS]` (the default command; a first argument starting with "-" is
# taken as postgres options) initialises an empty PGDATA once, runs the scripts
# in /docker-entrypoint-initdb.d/ against POSTGRES_DB as POSTGRES_USER through a
# temporary server that listens on no TCP address, then runs postgres as the
# postgres user. Any other command (bash, pg_basebackup, ...) is run as given.
#
# The password is never put on a command line and never logged.
set -Eeuo pipefail
shopt -s nullglob

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# file_env VAR [DEFAULT]: VAR from the environment or from the file named by
# VAR_FILE; both set is an error. The value stays in a shell variable; whether
# it is exported is decided by the caller.
file_env() {
  local var=$1 def=${2:-} fvar=${1}_FILE val
  if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
    die "both $var and $fvar are set; they are exclusive, set only one"
  fi
  val=$def
  if [ -n "${!var:-}" ]; then
    val=${!var}
  elif [ -n "${!fvar:-}" ]; then
    [ -r "${!fvar}" ] || die "$fvar names '${!fvar}', which is missing or unreadable (for user $(id -un))"
    val=$(<"${!fvar}")
  fi
  printf -v "$var" '%s' "$val"
}

setup_env() {
  file_env POSTGRES_USER postgres
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  export POSTGRES_USER POSTGRES_DB
  export PGDATA=${PGDATA:-/var/lib/postgresql/data}
  [ -n "$POSTGRES_USER" ] || die "POSTGRES_USER is empty"
  [ -n "$POSTGRES_DB" ] || die "POSTGRES_DB is empty"
  HOST_AUTH=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  case $HOST_AUTH in
    scram-sha-256 | md5) ;;
    trust) die "POSTGRES_HOST_AUTH_METHOD=trust is refused: TCP connections always need a password here (scram-sha-256)" ;;
    *) die "POSTGRES_HOST_AUTH_METHOD='$HOST_AUTH' is not supported; use scram-sha-256 (the default) or md5" ;;
  esac
}

# As root: make PGDATA and the socket directory belong to postgres, mode 0700.
fix_ownership() {
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  mkdir -p /var/run/postgresql
  chown postgres:postgres /var/run/postgresql
  chmod 3777 /var/run/postgresql
}

# As postgres: what can be done without root.
ensure_dirs() {
  mkdir -p "$PGDATA" 2>/dev/null || die "cannot create PGDATA '$PGDATA' as $(id -un); start the container as root or create it"
  if [ -O "$PGDATA" ]; then chmod 0700 "$PGDATA"; fi
  mkdir -p /var/run/postgresql 2>/dev/null || true
}

is_empty_dir() { [ -z "$(ls -A -- "$1")" ]; }

init_database() {
  if [ -z "$POSTGRES_PASSWORD" ]; then
    cat >&2 <<EOF
$(date -u '+%Y-%m-%d %H:%M:%S UTC') [entrypoint] error: the database is not initialised and no superuser password is given.
  Set POSTGRES_PASSWORD_FILE to a file holding the password (preferred: the
  value stays out of 'docker inspect'), or POSTGRES_PASSWORD. TCP connections
  always need a password here (scram-sha-256); there is no trust mode.
EOF
    exit 1
  fi
  if ! is_empty_dir "$PGDATA"; then
    die "PGDATA '$PGDATA' is not empty but holds no PG_VERSION, so it is no PostgreSQL data directory; refusing to initialise over it. Empty it, or point PGDATA at a subdirectory (for example $PGDATA/pgdata) when the mount point itself holds other files (like lost+found)."
  fi

  log "initialising a PostgreSQL $PG_MAJOR cluster in $PGDATA for user '$POSTGRES_USER'"
  # POSTGRES_INITDB_ARGS is split on blanks (no globbing, no quotes).
  local initdb_args=()
  read -r -a initdb_args <<<"$POSTGRES_INITDB_ARGS"
  # The password goes through a pipe (/dev/fd/N), never argv or a file on disk.
  initdb --username="$POSTGRES_USER" \
    --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host="$HOST_AUTH" \
    "${initdb_args[@]}" >&2

  cat >"$PGDATA/pg_hba.conf" <<EOF
# TYPE  DATABASE     USER  ADDRESS  METHOD
# Inside the container, over the socket: trusted. Over TCP: always a password.
local   all          all            trust
local   replication  all            trust
host    all          all   all      $HOST_AUTH
EOF

  # The temporary server: the container's postgres options (shared libraries,
  # settings the init scripts may need), but socket only, no TCP address.
  log "starting a temporary server (socket only) for the initialisation"
  local opts=""
  if [ $# -gt 1 ]; then opts=$(printf '%q ' "${@:2}"); fi
  pg_ctl -D "$PGDATA" -w -t 60 -o "$opts-c listen_addresses='' -p ${PGPORT:-5432}" start >&2

  local psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER")
  if [ "$POSTGRES_DB" != postgres ]; then
    local exists
    exists=$("${psql[@]}" --dbname postgres -tA --set db="$POSTGRES_DB" \
      <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
    if [ -z "$exists" ]; then
      log "creating database '$POSTGRES_DB'"
      "${psql[@]}" --dbname postgres -q --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
  fi

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh)
        if [ -x "$f" ]; then
          log "running $f"
          # The password reaches the script through its environment only.
          POSTGRES_PASSWORD=$POSTGRES_PASSWORD "$f"
        else
          log "sourcing $f"
          # Sourced scripts get the shell options of the official image's
          # entrypoint: no nounset, no nullglob.
          set +u
          shopt -u nullglob
          # shellcheck disable=SC1090
          . "$f"
          shopt -s nullglob
          set -u
        fi
        ;;
      *.sql) log "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -q -f "$f" ;;
      *.sql.gz) log "running $f"; gzip -dc "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" -q ;;
      *) log "ignoring $f (not *.sh, *.sql or *.sql.gz)" ;;
    esac
  done

  pg_ctl -D "$PGDATA" -w -t 120 -m fast stop >&2
  log "initialisation complete"
}

main() {
  if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
  fi
  if [ "$1" != postgres ]; then
    exec "$@"
  fi
  # `postgres --help`, `--version`, `-C name`, `--describe-config`: no setup.
  local a
  for a in "${@:2}"; do
    case $a in
      --help | -\? | --version | -V | -C | --describe-config) exec "$@" ;;
    esac
  done

  setup_env
  if [ "$(id -u)" = 0 ]; then
    fix_ownership
    export HOME=/var/lib/postgresql
    # Run this script again as postgres. A password file may be readable by root
    # only, so the value read here travels in the environment of the new process
    # (never its arguments); that process drops it before postgres starts.
    export POSTGRES_PASSWORD POSTGRES_INITDB_ARGS
    unset POSTGRES_PASSWORD_FILE POSTGRES_USER_FILE POSTGRES_DB_FILE POSTGRES_INITDB_ARGS_FILE
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${BASH_SOURCE[0]}" "$@"
  fi
  ensure_dirs

  if [ -s "$PGDATA/PG_VERSION" ]; then
    local have
    have=$(<"$PGDATA/PG_VERSION")
    if [ "$have" != "$PG_MAJOR" ]; then
      die "PGDATA '$PGDATA' was initialised by PostgreSQL $have, this image runs PostgreSQL $PG_MAJOR; upgrade the data directory with pg_upgrade or use a PostgreSQL $have image"
    fi
    log "PGDATA '$PGDATA' holds a PostgreSQL $have cluster; skipping initialisation"
  else
    init_database "$@"
  fi

  unset POSTGRES_PASSWORD
  exec "$@"
}

main "$@"
