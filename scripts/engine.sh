#!/usr/bin/env bash
# Make sure a Docker engine answers. When `docker info` fails and we run as root,
# install Debian's docker.io (if missing) and start dockerd in the background.
# Otherwise say what to install. Idempotent; safe to call before every test run.
#
# PACSD_ENGINE_DRYRUN=1 prints the decision ("decision: ready|wait|start|install")
# and what would be done ("would: ..."), and changes nothing. Only then may
# PACSD_DOCKER_SOCK, PACSD_DOCKER_PIDFILE and PACSD_DOCKER_EXEC_ROOT point the
# script at other paths than the machine engine's (for tests).
set -euo pipefail

log() { printf 'engine: %s\n' "$*" >&2; }

dryrun=${PACSD_ENGINE_DRYRUN:-0}
sock=${PACSD_DOCKER_SOCK:-/var/run/docker.sock}
pidfile=${PACSD_DOCKER_PIDFILE:-/var/run/docker.pid}
execroot=${PACSD_DOCKER_EXEC_ROOT:-/var/run/docker}
if [ "$dryrun" != 1 ] && [ -n "${PACSD_DOCKER_SOCK:-}${PACSD_DOCKER_PIDFILE:-}${PACSD_DOCKER_EXEC_ROOT:-}" ]; then
  log "PACSD_DOCKER_SOCK, PACSD_DOCKER_PIDFILE and PACSD_DOCKER_EXEC_ROOT are for PACSD_ENGINE_DRYRUN=1 only:"
  log "the engine this script starts is the machine's own. Unset them and run this again."
  exit 2
fi
decide() { printf 'decision: %s\n' "$1"; }
would() { printf 'would: %s\n' "$*"; }

answers() { docker -H "unix://$sock" info >/dev/null 2>&1; }

if answers; then
  [ "$dryrun" = 1 ] && decide ready
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "no Docker engine answers and this is not root."
  log "Install and start one (Debian: 'apt-get install docker.io && systemctl start docker'),"
  log "or add your user to the 'docker' group, then run this again."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$dryrun" = 1 ]; then
    decide install
    would "apt-get install docker.io"
    exit 0
  fi
  log "installing Debian's docker.io (dockerd not found) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
  if ! apt-get install -y -qq docker.io >/dev/null; then
    log "could not install docker.io from the machine's apt sources; install a Docker engine by hand."
    exit 1
  fi
fi

# Prefer systemd when it runs; most CI containers have none.
if [ "$dryrun" != 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl start docker >/dev/null 2>&1 || true
fi

# alive PID: the process exists and is not a zombie (a killed dockerd whose
# parent has not reaped it still shows in pgrep and answers kill -0).
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
# program PID: the base name of the program the process runs.
program() {
  local argv0
  argv0=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | head -n 1) || return 1
  basename -- "$argv0"
}
# pid_in FILE: the pid a pid file holds, or nothing.
pid_in() {
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  pid=${pid//[[:space:]]/}
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  echo "$pid"
}
# The machine's engine is the dockerd its own pid file names, alive. Other
# dockerd processes (test hosts' engines on sockets of their own) are not it.
main_dockerd() {
  local pid
  pid=$(pid_in "$pidfile") || return 1
  alive "$pid" && [ "$(program "$pid")" = dockerd ] && echo "$pid"
}

if pid=$(main_dockerd); then
  log "dockerd (pid $pid, from $pidfile) runs but does not answer yet; waiting for it"
  if [ "$dryrun" = 1 ]; then decide wait; exit 0; fi
else
  if [ -f "$pidfile" ]; then
    log "removing stale $pidfile left by an engine that was killed (pid $(pid_in "$pidfile" || echo '?'))"
    if [ "$dryrun" = 1 ]; then would "rm -f $pidfile"; else rm -f "$pidfile"; fi
  fi
  # The containerd a killed dockerd started may be gone too, or hang on: a new
  # dockerd waits for the one its pid file names, so clear it. Only a
  # containerd of this exec root is stopped: the pid may belong to anything now.
  cpid=$execroot/containerd/containerd.pid
  if [ -f "$cpid" ]; then
    if c=$(pid_in "$cpid") && alive "$c" && [ "$(program "$c")" = containerd ] &&
      tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -qF "$execroot/containerd/"; then
      log "stopping containerd (pid $c) left by an engine that was killed"
      if [ "$dryrun" = 1 ]; then would "kill containerd $c"; else
        kill -TERM "$c" 2>/dev/null || true
        sleep 2
        alive "$c" && kill -KILL "$c" 2>/dev/null || true
      fi
    fi
    if [ "$dryrun" = 1 ]; then would "rm -f $cpid"; else rm -f "$cpid"; fi
  fi
  if [ "$dryrun" = 1 ]; then decide start; would "start dockerd"; exit 0; fi
  log "starting dockerd in the background (log: /var/log/pacsd-dockerd.log)"
  nohup dockerd >>/var/log/pacsd-dockerd.log 2>&1 </dev/null &
  disown || true
fi

for i in $(seq 1 60); do
  if answers; then
    log "engine ready ($(docker -H "unix://$sock" version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; see /var/log/pacsd-dockerd.log"
tail -20 /var/log/pacsd-dockerd.log >&2 || true
exit 1
