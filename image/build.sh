#!/usr/bin/env bash
# Build the local PostgreSQL image (default tag pacsd-postgres:15) from Debian's
# packages, without any container registry:
#
#   1. mmdebstrap --variant=minbase of this machine's Debian release, with the
#      release's `postgresql` package and its dependencies (no recommends), from
#      the mirror named in this machine's apt sources, slimmed, as a tar stream;
#   2. `docker import` of that stream as the base image pacsd-postgres-base:<major>;
#   3. a thin `docker build` (image/Dockerfile) adding our entrypoint and init scripts.
#
# The image carries the label io.pacsd.recipe=<sha256 of the recipe>; when the
# image already exists with the same hash nothing is built. Downloaded .debs are
# kept under image/.cache/debs to speed up rebuilds.
#
# Usage: bash image/build.sh [TAG]          (default: pacsd-postgres:15)
# Environment:
#   PACSD_IMAGE_FORCE=1        rebuild even when the image is up to date
#   PACSD_DEBIAN_MIRROR=URI    use this mirror instead of the apt sources' one
#   PACSD_IMAGE_NO_CACHE=1     do not read or write image/.cache
set -Eeuo pipefail

TAG=${1:-pacsd-postgres:15}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$HERE/.cache/debs
START=$SECONDS
STEP_START=$SECONDS

log() { printf 'image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
stamp() { # prefix each line of stdin with the time since the start
  local line
  while IFS= read -r line; do
    case $line in Get:* | '') continue ;; esac   # apt's line per downloaded package
    printf 'image: [%3ss]     %s\n' $((SECONDS - START)) "$line"
  done >&2
}
step() { # step "description": prints the time the previous step took
  local now=$SECONDS
  if [ -n "${STEP_NAME:-}" ]; then log "  done in $((now - STEP_START))s"; fi
  STEP_NAME=$1 STEP_START=$now
  log "[$(printf '%3ss' $((now - START)))] $1"
}

command -v docker >/dev/null 2>&1 || die "docker not found; run 'bash scripts/engine.sh' first"
docker info >/dev/null 2>&1 || die "no Docker engine answers; run 'bash scripts/engine.sh' first"

# --- the release -----------------------------------------------------------
[ -r /etc/os-release ] || die "/etc/os-release is missing; cannot tell which Debian release to build"
# shellcheck disable=SC1091
. /etc/os-release
[ "${ID:-}" = debian ] || die "this machine runs '${ID:-unknown}', not Debian; the recipe builds from Debian's packages"
SUITE=${VERSION_CODENAME:-}
[ -n "$SUITE" ] || die "/etc/os-release has no VERSION_CODENAME"

# --- the recipe hash ---------------------------------------------------------
# Everything that shapes the image: this script, the Dockerfile, the entrypoint,
# the init scripts, and the release. Not the README, the test or the cache.
recipe_hash() {
  {
    printf 'suite=%s\n' "$SUITE"
    cd "$HERE"
    find . -path ./.cache -prune -o -type f \
      ! -name README.md ! -name test.sh ! -name '*~' ! -name '.*.swp' -print |
      LC_ALL=C sort |
      while IFS= read -r f; do
        printf '%s\0' "$f"
        sha256sum <"$f"
      done
  } | sha256sum | cut -c1-64
}
HASH=$(recipe_hash)

label_of() { docker image inspect -f '{{ index .Config.Labels "io.pacsd.recipe" }}' "$1" 2>/dev/null || true; }
have=$(label_of "$TAG")
if [ "$have" = "$HASH" ] && [ "${PACSD_IMAGE_FORCE:-0}" != 1 ]; then
  log "$TAG is up to date (recipe ${HASH:0:12}); nothing to build"
  exit 0
fi

# One build at a time on this machine (parallel `make image` runs): wait for the
# other one, then look again.
mkdir -p "$HERE/.cache"
exec 9>"$HERE/.cache/build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
  have=$(label_of "$TAG")
  if [ "$have" = "$HASH" ] && [ "${PACSD_IMAGE_FORCE:-0}" != 1 ]; then
    log "$TAG is up to date (recipe ${HASH:0:12}), built meanwhile; nothing to build"
    exit 0
  fi
fi
if [ -n "$have" ]; then
  log "$TAG exists with recipe ${have:0:12}; the recipe is now ${HASH:0:12}: rebuilding"
else
  log "$TAG is missing: building it (recipe ${HASH:0:12})"
fi

# --- the mirror ----------------------------------------------------------------
# The first `deb` source of this machine serving "$SUITE" (one-line *.list files
# and deb822 *.sources files, in apt's order), plus its -updates and -security
# suites when the machine uses them too.
apt_sources() { # prints "URI SUITE" for every enabled deb source
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '$1 == "deb" {
           i = 2
           if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
           print $i, $(i+1)
         }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk 'function flush(   i, j, nu, ns, u, s) {
           if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
             nu = split(uris, u, " "); ns = split(suites, s, " ")
             for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
           }
           types = uris = suites = ""; enabled = "yes"
         }
         BEGIN { enabled = "yes" }
         /^[ \t]*#/ { next }
         /^[ \t]*$/ { flush(); key = ""; next }
         /^[A-Za-z0-9-]+:/ {
           key = tolower(substr($0, 1, index($0, ":") - 1))
           val = substr($0, index($0, ":") + 1)
         }
         /^[ \t]/ { val = $0 }                  # continuation line
         { gsub(/^[ \t]+|[ \t]+$/, "", val)
           if (key == "types") types = types " " val
           else if (key == "uris") uris = uris " " val
           else if (key == "suites") suites = suites " " val
           else if (key == "enabled") enabled = val }
         END { flush() }' "$f"
  done
}

SOURCES=()
if [ -n "${PACSD_DEBIAN_MIRROR:-}" ]; then
  SOURCES=("deb ${PACSD_DEBIAN_MIRROR%/} $SUITE main")
else
  mapfile -t entries < <(apt_sources)
  main_uri=""
  for e in "${entries[@]}"; do
    if [ "${e#* }" = "$SUITE" ]; then main_uri=${e%% *}; break; fi
  done
  [ -n "$main_uri" ] || die "no 'deb' source for $SUITE in /etc/apt/sources.list{,.d}; set PACSD_DEBIAN_MIRROR"
  SOURCES=("deb ${main_uri%/} $SUITE main")
  for extra in "$SUITE-updates" "$SUITE-security"; do
    for e in "${entries[@]}"; do
      if [ "${e#* }" = "$extra" ]; then SOURCES+=("deb ${e%% *} $extra main"); break; fi
    done
  done
fi

# --- tools -----------------------------------------------------------------------
if ! command -v mmdebstrap >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "mmdebstrap is missing; install it ('apt-get install --no-install-recommends mmdebstrap') or run as root"
  step "installing mmdebstrap from the machine's apt sources"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; } ||
    die "could not install mmdebstrap"
fi
[ "$(id -u)" -eq 0 ] || die "building the root file system needs root (mmdebstrap --mode=root)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pacsd-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- 1+2: root file system, imported as the base image ----------------------------
if [ "${PACSD_IMAGE_NO_CACHE:-0}" = 1 ]; then
  CACHE=$WORK/debs
fi
mkdir -p "$CACHE"
log "  release: Debian $SUITE; sources: $(printf '%s; ' "${SOURCES[@]}")"
log "  package cache: $CACHE ($(find "$CACHE" -name '*.deb' | wc -l) .debs)"
step "bootstrapping a minbase root file system with postgresql (mmdebstrap)"

# dpkg leaves these out of every package: documentation, manuals, translations.
# (PostgreSQL's own manual pages are masters of alternatives; they go later.)
DPKG_OPTS=(
  --dpkgopt='force-unsafe-io'   # no fsync per file: the tree is thrown away on failure anyway
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)


BASE=pacsd-postgres-base:${TAG##*:}
id_of() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
OLD_IDS="$(id_of "$TAG") $(id_of "$BASE")"
# shellcheck disable=SC2016
mmdebstrap --variant=minbase --mode=root --format=tar \
  --include=postgresql \
  --aptopt='APT::Install-Recommends "false"' \
  --aptopt='Acquire::Retries "3"' \
  --skip=essential/unlink \
  "${DPKG_OPTS[@]}" \
  --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
  --setup-hook="cp $(printf '%q' "$CACHE")/*.deb \"\$1/var/cache/apt/archives/\" 2>/dev/null || true" \
  --essential-hook="sh $(printf '%q' "$HERE/hooks/essential.sh") \"\$1\"" \
  --customize-hook="sh $(printf '%q' "$HERE/hooks/customize.sh") \"\$1\" $(printf '%q' "$CACHE")" \
  "$SUITE" - "${SOURCES[@]}" 2> >(stamp) |
  docker import \
    --message "Debian $SUITE minbase + postgresql, by image/build.sh" \
    --change "LABEL io.pacsd.recipe.base=$HASH" \
    - >"$WORK/base.id" || {
  # docker import takes even the empty stream of a failed bootstrap: drop it.
  [ ! -s "$WORK/base.id" ] || docker rmi "$(cat "$WORK/base.id")" >/dev/null 2>&1 || true
  die "bootstrapping the root file system failed (see the mmdebstrap messages above)"
}
docker tag "$(cat "$WORK/base.id")" "$BASE"
log "  base image $BASE: $(docker image inspect -f '{{.Size}}' "$BASE" | awk '{printf "%.0f MB", $1/1e6}')"

# --- 3: our layer ---------------------------------------------------------------
step "reading the PostgreSQL version of the base image"
versions=$(docker run --rm --network none --entrypoint /bin/sh "$BASE" -c \
  'ls /usr/lib/postgresql; dpkg-query -W -f="\${Version}\n" "postgresql-$(ls /usr/lib/postgresql | sort -n | tail -1)"')
PG_MAJOR=$(printf '%s\n' "$versions" | head -n -1 | sort -n | tail -1)
PG_VERSION=$(printf '%s\n' "$versions" | tail -1)
[[ "$PG_MAJOR" =~ ^[0-9]+$ ]] || die "could not find the PostgreSQL major version in the base image (got '$PG_MAJOR')"
log "  PostgreSQL $PG_MAJOR ($PG_VERSION)"
case ${TAG##*:} in
  *[!0-9]*) ;;
  "$PG_MAJOR") ;;
  *) log "warning: tag $TAG names PostgreSQL ${TAG##*:} but Debian $SUITE ships PostgreSQL $PG_MAJOR" ;;
esac

step "docker build of $TAG"
mkdir -p "$WORK/context"
cp -r "$HERE/Dockerfile" "$HERE/docker-entrypoint.sh" "$HERE/initdb.d" "$WORK/context/"
docker build --quiet \
  --build-arg "BASE=$BASE" \
  --build-arg "PG_MAJOR=$PG_MAJOR" \
  --build-arg "PG_VERSION=$PG_VERSION" \
  --build-arg "RECIPE=$HASH" \
  --build-arg "SUITE=$SUITE" \
  -t "$TAG" "$WORK/context" >/dev/null

step "checking the image"
docker run --rm --network none "$TAG" postgres --version >&2

log "  done in $((SECONDS - STEP_START))s"

# The images this build replaced, now untagged: remove them unless a container
# still uses them (docker rmi without -f refuses then).
for id in $OLD_IDS; do
  if [ "$id" != "$(id_of "$TAG")" ] && [ "$id" != "$(id_of "$BASE")" ] &&
    [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; then
    docker rmi "$id" >/dev/null 2>&1 && log "  removed the replaced image ${id#sha256:}" || true
  fi
done
log "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'), recipe ${HASH:0:12}) in $((SECONDS - START))s"
