#!/usr/bin/env bash
# Make sure chromium is on PATH for the end-to-end tests of the status page
# (they drive it headless over the DevTools protocol; nothing else uses it).
# When it is missing and we run as root, install Debian's chromium package
# from the machine's apt sources. Not root and missing: say what to install
# and exit 1. Idempotent and quiet when it is present; safe to call before
# every run.
#
# PACSD_CHROMIUM_DRYRUN=1 prints the decision ("decision: ready|install") and
# what would be done ("would: ..."), and changes nothing.
set -euo pipefail

log() { printf 'chromium: %s\n' "$*" >&2; }

dryrun=${PACSD_CHROMIUM_DRYRUN:-0}
decide() { printf 'decision: %s\n' "$1"; }
would() { printf 'would: %s\n' "$*"; }

if command -v chromium >/dev/null 2>&1; then
  [ "$dryrun" = 1 ] && decide ready
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "chromium is not on PATH and this is not root."
  log "Install it (Debian: 'apt-get install chromium'), then run this again."
  exit 1
fi

if [ "$dryrun" = 1 ]; then
  decide install
  would "apt-get install chromium"
  exit 0
fi

log "installing Debian's chromium (chromium not found) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
if ! apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  log "could not install chromium from the machine's apt sources;"
  log "install Chromium or Chrome by hand, as a 'chromium' command on PATH."
  exit 1
fi

if ! command -v chromium >/dev/null 2>&1; then
  log "chromium is installed, but the chromium command is still not on PATH ($PATH)"
  exit 1
fi
log "installed $(chromium --version 2>/dev/null | head -n 1)"
