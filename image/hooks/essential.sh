#!/bin/sh
# mmdebstrap --essential-hook: runs on the build machine after the essential
# packages are installed and before postgresql is. $1 is the root file system.
set -eu
root=$1

# The postgres account with the official image's uid/gid 999, so that a data
# directory moved between this image and the official one keeps its owner.
# postgresql-common's `adduser --system postgres` then finds it in place.
grep -q '^postgres:' "$root/etc/group" || echo 'postgres:x:999:' >>"$root/etc/group"
grep -q '^postgres:' "$root/etc/passwd" ||
  echo 'postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/bash' >>"$root/etc/passwd"

# No "main" cluster from postgresql-common: the entrypoint runs initdb itself.
mkdir -p "$root/etc/postgresql-common"
echo 'create_main_cluster = false' >"$root/etc/postgresql-common/createcluster.conf"
