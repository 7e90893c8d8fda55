#!/usr/bin/env bash
# Make sure a Docker engine answers. When `docker info` fails and we run as root,
# install Debian's docker.io (if missing) and start dockerd in the background.
# Otherwise say what to install. Idempotent; safe to call before every test run.
set -euo pipefail

log() { printf 'engine: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "no Docker engine answers and this is not root."
  log "Install and start one (Debian: 'apt-get install docker.io && systemctl start docker'),"
  log "or add your user to the 'docker' group, then run this again."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io (dockerd not found) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
  if ! apt-get install -y -qq docker.io >/dev/null; then
    log "could not install docker.io from the machine's apt sources; install a Docker engine by hand."
    exit 1
  fi
fi

# Prefer systemd when it runs; most CI containers have none.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl start docker >/dev/null 2>&1 || true
fi

# alive PID: the process exists and is not a zombie (a killed dockerd whose
# parent has not reaped it still shows in pgrep and answers kill -0).
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
running_dockerd() {
  local pid
  for pid in $(pgrep -x dockerd 2>/dev/null); do
    if alive "$pid"; then echo "$pid"; return 0; fi
  done
  return 1
}

if ! docker info >/dev/null 2>&1; then
  pidfile=/var/run/docker.pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && alive "$pid" && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null; then
      log "dockerd (pid $pid) runs but does not answer yet; waiting for it"
    else
      log "removing stale $pidfile left by an engine that was killed (pid ${pid:-?})"
      rm -f "$pidfile"
    fi
  fi
  # The containerd a killed dockerd started may be gone too, or hang on: a new
  # dockerd waits for the one its pid file names, so clear it.
  cpid=/var/run/docker/containerd/containerd.pid
  if ! running_dockerd >/dev/null && [ -f "$cpid" ]; then
    c=$(cat "$cpid" 2>/dev/null || true)
    if [ -n "$c" ] && alive "$c"; then
      log "stopping containerd (pid $c) left by an engine that was killed"
      kill -TERM "$c" 2>/dev/null || true
      sleep 2
      alive "$c" && kill -KILL "$c" 2>/dev/null || true
    fi
    rm -f "$cpid"
  fi
  if ! running_dockerd >/dev/null; then
    log "starting dockerd in the background (log: /var/log/pacsd-dockerd.log)"
    nohup dockerd >>/var/log/pacsd-dockerd.log 2>&1 </dev/null &
    disown || true
  fi
fi

for i in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; see /var/log/pacsd-dockerd.log"
tail -20 /var/log/pacsd-dockerd.log >&2 || true
exit 1
