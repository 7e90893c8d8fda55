#!/usr/bin/env bash
# Make sure the shells whose completion scripts the end-to-end tests drive
# are installed: zsh, fish, and bash with the bash-completion package (the
# bash script of 'pacsd completion bash' uses its functions). When one is
# missing and we run as root, install Debian's packages from the machine's
# apt sources. Not root and missing: say what to install and exit 1.
# Idempotent and quiet when they are present; safe to call before every run.
#
# PACSD_SHELLS_DRYRUN=1 prints the decision ("decision: ready|install") and
# what would be done ("would: ..."), and changes nothing.
set -euo pipefail

log() { printf 'shells: %s\n' "$*" >&2; }

dryrun=${PACSD_SHELLS_DRYRUN:-0}
decide() { printf 'decision: %s\n' "$1"; }
would() { printf 'would: %s\n' "$*"; }

# The file of bash-completion that a bash completion script needs sourced.
bash_completion=${PACSD_BASH_COMPLETION:-/usr/share/bash-completion/bash_completion}

# missing sets packages to the Debian packages whose command or file is not there.
missing() {
  packages=""
  command -v zsh >/dev/null 2>&1 || packages+=" zsh"
  command -v fish >/dev/null 2>&1 || packages+=" fish"
  [ -r "$bash_completion" ] || packages+=" bash-completion"
  packages=${packages# }
}

missing
if [ -z "$packages" ]; then
  [ "$dryrun" = 1 ] && decide ready
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  log "missing: $packages, and this is not root."
  log "Install them (Debian: 'apt-get install $packages'), then run this again."
  exit 1
fi

if [ "$dryrun" = 1 ]; then
  decide install
  would "apt-get install $packages"
  exit 0
fi

log "installing Debian's $packages ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || log "apt-get update failed; trying the install anyway"
# shellcheck disable=SC2086 # one word a package
if ! apt-get install -y -qq --no-install-recommends $packages >/dev/null; then
  log "could not install $packages from the machine's apt sources; install them by hand."
  exit 1
fi

missing
if [ -n "$packages" ]; then
  log "installed, but still missing: $packages (PATH: $PATH)"
  exit 1
fi
log "installed: $(zsh --version | head -n 1); $(fish --version 2>&1 | head -n 1); bash-completion"
