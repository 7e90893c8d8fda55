#!/usr/bin/env bash
# Make sure etcd and etcdctl are on PATH for the end-to-end tests of the etcd
# mode (the test bed starts its own members; no etcd service is needed). When
# either is missing and we run as root, install Debian's etcd-server and
# etcd-client from the machine's apt sources, and make sure the package left
# no etcd service running (its own on 127.0.0.1:2379): the tests start every
# member they use. Not root and missing: say what to install and exit 1.
# Idempotent and quiet when both are present; safe to call before every run.
#
# PACSD_ETCD_DRYRUN=1 prints the decision ("decision: ready|install") and what
# would be done ("would: ..."), and changes nothing.
set -euo pipefail

log() { printf 'etcd: %s\n' "$*" >&2; }

dryrun=${PACSD_ETCD_DRYRUN:-0}
decide() { printf 'decision: %s\n' "$1"; }
would() { printf 'would: %s\n' "$*"; }

if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
  [ "$dryrun" = 1 ] && decide ready
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "etcd or etcdctl is not on PATH and this is not root."
  log "Install them (Debian: 'apt-get install etcd-server etcd-client'), then run this again."
  exit 1
fi

if [ "$dryrun" = 1 ]; then
  decide install
  would "apt-get install etcd-server etcd-client"
  would "stop the etcd service the package may have started"
  exit 0
fi

# The package's maintainer scripts start its service unless policy-rc.d says
# no (exit 101); say no for the time of the install when nothing else does.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# written by pacsd scripts/etcd.sh for the time of an install\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  own_policy=1
fi
drop_policy() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap drop_policy EXIT

log "installing Debian's etcd-server and etcd-client (etcd or etcdctl not found) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
if ! apt-get install -y -qq etcd-server etcd-client >/dev/null; then
  log "could not install etcd-server and etcd-client from the machine's apt sources;"
  log "install etcd 3.4 or newer (etcd and etcdctl on PATH) by hand."
  exit 1
fi
drop_policy
trap - EXIT

# Stop the service the package may have started anyway: with systemd, stop
# and disable the unit; without, its init script, then any etcd that runs as
# the package's user (the tests run theirs as root, on ports of their own).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if systemctl is-active --quiet etcd.service 2>/dev/null || systemctl is-enabled --quiet etcd.service 2>/dev/null; then
    log "stopping and disabling the etcd service the package installed"
    systemctl disable --now etcd.service >/dev/null 2>&1 || log "could not stop etcd.service; stop it by hand"
  fi
fi
if [ -x /etc/init.d/etcd ]; then
  /etc/init.d/etcd stop >/dev/null 2>&1 || true
fi
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
if etcd_uid=$(id -u etcd 2>/dev/null); then
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$(stat -c %u "$dir" 2>/dev/null || true)" = "$etcd_uid" ] || continue
    argv0=$(tr '\0' '\n' <"$dir/cmdline" 2>/dev/null | head -n 1) || continue
    [ "$(basename -- "${argv0:-x}")" = etcd ] || continue
    log "stopping the etcd (pid $pid) the package started"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
fi
if command -v ss >/dev/null 2>&1 && ss -Hltn 'sport = :2379' 2>/dev/null | grep -q '127.0.0.1:2379'; then
  log "something still listens on 127.0.0.1:2379 (not the package's etcd); the tests do not use that port"
fi

if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
  log "etcd-server and etcd-client are installed, but etcd or etcdctl is still not on PATH ($PATH)"
  exit 1
fi
log "installed $(etcd --version 2>/dev/null | head -n 1)"
