#!/usr/bin/env bash
# Build the local PostgreSQL image (default tag pacsd-postgres:15) from Debian's
# packages, without any container registry. The tag names the PostgreSQL major
# version, and that the Debian release: 15 from bookworm, 17 from trixie.
#
#   1. mmdebstrap --variant=minbase of that Debian release, with the release's
#      `postgresql` package and its dependencies (no recommends), from the
#      mirror named in this machine's apt sources, slimmed, as a tar stream;
#   2. `docker import` of that stream as the base image pacsd-postgres-base:<tag>;
#   3. a thin `docker build` (image/Dockerfile) adding our entrypoint and init scripts.
#
# The image carries the label io.pacsd.recipe=<sha256 of the recipe and the
# release>; when the image already exists with the same hash nothing is built.
# Downloaded .debs are kept under image/.cache/debs-<major> to speed up rebuilds.
#
# Usage: bash image/build.sh [TAG]          (default: pacsd-postgres:15; or pacsd-postgres:17)
# Environment:
#   PACSD_IMAGE_FORCE=1        rebuild even when the image is up to date
#   PACSD_DEBIAN_MIRROR=URI    use this mirror instead of the apt sources' one
#   PACSD_IMAGE_NO_CACHE=1     do not read or write image/.cache
set -Eeuo pipefail

TAG=${1:-pacsd-postgres:15}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START=$SECONDS
STEP_START=$SECONDS
# shellcheck source=image/debian.sh
. "$HERE/debian.sh"

MAJOR=$(major_of "$TAG")
[ -n "$MAJOR" ] || die "the tag of $TAG does not name a PostgreSQL major version; build pacsd-postgres:15 or pacsd-postgres:17"
CACHE=$HERE/.cache/debs-$MAJOR
debian_release
postgres_suite "$MAJOR"

# --- the recipe hash ---------------------------------------------------------
# Everything that shapes the image: this script and debian.sh, the Dockerfile,
# the entrypoint, the hooks, the init scripts, and the release (so the images
# of 15 and 17 never share a hash). Not the
# README, the test, systemd.sh (the package's test image) or the cache.
HASH=$(recipe_hash build.sh debian.sh Dockerfile docker-entrypoint.sh hooks initdb.d)
if up_to_date "$TAG"; then
  exit 0
fi

# --- the mirror and the tools ---------------------------------------------------
debian_sources
need_mmdebstrap

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pacsd-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- 1+2: root file system, imported as the base image ----------------------------
if [ "${PACSD_IMAGE_NO_CACHE:-0}" = 1 ]; then
  CACHE=$WORK/debs
fi
step "bootstrapping a minbase root file system with postgresql (mmdebstrap)"

BASE=pacsd-postgres-base:${TAG##*:}
OLD_IDS="$(id_of "$TAG") $(id_of "$BASE")"
# (PostgreSQL's own manual pages are masters of alternatives; customize.sh
# removes them.)
# shellcheck disable=SC2016
debian_import "$CACHE" "$WORK/base.id" "Debian $SUITE minbase + postgresql, by image/build.sh" \
  --include=postgresql \
  --essential-hook="sh $(printf '%q' "$HERE/hooks/essential.sh") \"\$1\""
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
[ "$PG_MAJOR" = "$MAJOR" ] ||
  die "the tag $TAG names PostgreSQL $MAJOR but Debian $SUITE's postgresql package brought PostgreSQL $PG_MAJOR; the release map in image/debian.sh (postgres_suite) is out of date"

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

# The images this build replaced, now untagged: removed unless a container
# still uses them.
remove_replaced "$OLD_IDS" "$TAG" "$BASE"
log "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'), recipe ${HASH:0:12}) in $((SECONDS - START))s"
