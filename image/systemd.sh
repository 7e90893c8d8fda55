#!/usr/bin/env bash
# Build the image the Debian package is tested in (internal/dist), from this
# machine's Debian release the way build.sh builds the PostgreSQL image: a
# minbase root file system with systemd as init (mmdebstrap from the mirror
# of this machine's apt sources, no registry), imported with `docker import`.
# A container of it boots systemd when run with --privileged (the tests do).
#
# The image carries io.pacsd.recipe=<sha256 of the release, this script,
# debian.sh and hooks/customize.sh>; when it exists with that hash nothing is
# built. Downloaded .debs are kept under image/.cache/debs-systemd.
#
# Usage: bash image/systemd.sh [TAG]     (default: pacsd-debian-systemd:<release>)
# Environment: PACSD_IMAGE_FORCE=1, PACSD_DEBIAN_MIRROR=URI (see build.sh)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START=$SECONDS
STEP_START=$SECONDS
# shellcheck source=image/debian.sh
. "$HERE/debian.sh"

debian_release
TAG=${1:-pacsd-debian-systemd:$SUITE}
HASH=$(recipe_hash systemd.sh debian.sh hooks/customize.sh)
if up_to_date "$TAG"; then
  exit 0
fi
debian_sources
need_mmdebstrap

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pacsd-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
OLD_IDS=$(id_of "$TAG")

# systemd-sysv: /sbin/init; procps: /bin/kill (the unit's ExecReload), on every
# Debian host but not in minbase. container=docker: systemd knows it runs in a
# container from the start. An empty machine-id: each container's systemd
# makes its own.
step "bootstrapping a minbase root file system with systemd (mmdebstrap)"
# shellcheck disable=SC2016
debian_import "$HERE/.cache/debs-systemd" "$WORK/id" "Debian $SUITE minbase + systemd, by image/systemd.sh" \
  --include=systemd,systemd-sysv,procps \
  --customize-hook='rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"' \
  --change="LABEL io.pacsd.recipe=$HASH" \
  --change='ENV container=docker' \
  --change='CMD ["/sbin/init"]'
docker tag "$(cat "$WORK/id")" "$TAG"

step "checking the image"
docker run --rm --network none "$TAG" systemctl --version | head -1 >&2
log "  done in $((SECONDS - STEP_START))s"
remove_replaced "$OLD_IDS" "$TAG"
log "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'), recipe ${HASH:0:12}) in $((SECONDS - START))s"
