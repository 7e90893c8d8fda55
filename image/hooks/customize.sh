#!/bin/sh
# mmdebstrap --customize-hook: runs on the build machine after every package is
# installed. $1 is the root file system, $2 the package cache directory to
# refresh (empty: none).
set -eu
root=$1 cache=${2:-}

# Keep exactly this build's .debs for the next one.
if [ -n "$cache" ]; then
  rm -rf "$cache.new"
  mkdir -p "$cache.new"
  cp "$root"/var/cache/apt/archives/*.deb "$cache.new"/
  rm -rf "$cache"
  mv "$cache.new" "$cache"
fi

cd "$root"
rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* \
  var/cache/debconf/*-old var/lib/dpkg/*-old var/log/*
# Locale sources (C.UTF-8 is built into libc), PostgreSQL's manual pages.
rm -rf usr/share/i18n/locales usr/share/i18n/charmaps usr/share/postgresql/*/man

# No JIT: LLVM and z3 are half the size of the tree, and the archive's queries
# have no use for them. With llvmjit gone PostgreSQL reports JIT unavailable
# (pg_jit_available() is false) and plans without it, whatever `jit` says.
find usr/lib \( -name 'libLLVM*.so*' -o -name 'libz3.so*' \) -delete
rm -rf usr/lib/postgresql/*/lib/llvmjit* usr/lib/postgresql/*/lib/bitcode

# ssl-cert made a key pair during the build; one key shared by every container
# of this image would be worse than none. (initdb leaves ssl off.)
rm -f etc/ssl/private/ssl-cert-snakeoil.key etc/ssl/certs/ssl-cert-snakeoil.pem

# Clusters made by package scripts, if any.
rm -rf var/lib/postgresql/[0-9]* etc/postgresql/[0-9]*

ldconfig -r "$root"
