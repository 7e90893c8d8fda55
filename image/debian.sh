# Sourced by build.sh (the PostgreSQL image) and systemd.sh (the test image
# of the Debian package): what building an image from this machine's Debian
# release takes, without any container registry. Not run by itself.
#
# The caller sets HERE (this directory) and START (=$SECONDS), then calls, in
# order: debian_release, [postgres_suite MAJOR], recipe_hash FILES...,
# up_to_date TAG (exit 0 when true), debian_sources, need_mmdebstrap,
# debian_import, remove_replaced.
# Environment: PACSD_IMAGE_FORCE=1 (rebuild even when up to date),
# PACSD_DEBIAN_MIRROR=URI (instead of the apt sources' mirror).

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

# debian_release checks for a Docker engine and sets HOST_SUITE, this
# machine's Debian release, and SUITE, the release to build (the same unless
# postgres_suite changes it).
debian_release() {
  command -v docker >/dev/null 2>&1 || die "docker not found; run 'bash scripts/engine.sh' first"
  docker info >/dev/null 2>&1 || die "no Docker engine answers; run 'bash scripts/engine.sh' first"
  [ -r /etc/os-release ] || die "/etc/os-release is missing; cannot tell which Debian release to build"
  local ID VERSION_CODENAME
  # shellcheck disable=SC1091
  . /etc/os-release
  [ "${ID:-}" = debian ] || die "this machine runs '${ID:-unknown}', not Debian; the recipe builds from Debian's packages"
  SUITE=${VERSION_CODENAME:-}
  [ -n "$SUITE" ] || die "/etc/os-release has no VERSION_CODENAME"
  HOST_SUITE=$SUITE
}

# postgres_suite MAJOR sets SUITE to the Debian release whose main archive
# ships PostgreSQL MAJOR (each release carries one major).
postgres_suite() {
  case $1 in
    15) SUITE=bookworm ;;
    17) SUITE=trixie ;;
    *) die "PostgreSQL $1: the recipe builds PostgreSQL 15 (Debian bookworm) and 17 (Debian trixie) only; name one of them in the tag, e.g. pacsd-postgres:17" ;;
  esac
}

# major_of TAG prints the PostgreSQL major version an image reference's tag
# starts with (pacsd-postgres:17 gives 17; nothing when the tag names none).
major_of() {
  local name=${1##*/} tag=""
  case $name in *:*) tag=${name#*:} ;; esac
  tag=${tag%%@*}
  printf '%s' "${tag%%[!0-9]*}"
}

# recipe_hash FILE|DIR...: the hash of the release and of the named files
# (relative to HERE; directories with every file below them).
recipe_hash() {
  {
    printf 'suite=%s\n' "$SUITE"
    cd "$HERE"
    find "$@" -type f ! -name '*~' ! -name '.*.swp' -print |
      LC_ALL=C sort |
      while IFS= read -r f; do
        printf '%s\0' "$f"
        sha256sum <"$f"
      done
  } | sha256sum | cut -c1-64
}

label_of() { docker image inspect -f '{{ index .Config.Labels "io.pacsd.recipe" }}' "$1" 2>/dev/null || true; }
id_of() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# up_to_date TAG: true when TAG exists with the recipe HASH; otherwise it
# takes the build lock (one build at a time on this machine: it waits for
# another and looks again) and says why it builds.
up_to_date() {
  local tag=$1 have
  have=$(label_of "$tag")
  if [ "$have" = "$HASH" ] && [ "${PACSD_IMAGE_FORCE:-0}" != 1 ]; then
    log "$tag is up to date (recipe ${HASH:0:12}); nothing to build"
    return 0
  fi
  mkdir -p "$HERE/.cache"
  exec 9>"$HERE/.cache/build.lock"
  if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
    have=$(label_of "$tag")
    if [ "$have" = "$HASH" ] && [ "${PACSD_IMAGE_FORCE:-0}" != 1 ]; then
      log "$tag is up to date (recipe ${HASH:0:12}), built meanwhile; nothing to build"
      return 0
    fi
  fi
  if [ -n "$have" ]; then
    log "$tag exists with recipe ${have:0:12}; the recipe is now ${HASH:0:12}: rebuilding"
  else
    log "$tag is missing: building it (recipe ${HASH:0:12})"
  fi
  return 1
}

# apt_sources prints "URI SUITE" for every enabled deb source of this
# machine (one-line *.list files and deb822 *.sources files, in apt's order).
apt_sources() {
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

# debian_sources sets SOURCES: SUITE, SUITE-updates and SUITE-security from
# the mirrors of this machine's apt sources. Each comes from the first deb
# source serving it, else from the one serving the machine's own release in
# its place (HOST_SUITE, HOST_SUITE-updates, HOST_SUITE-security: a mirror
# serves every release), else it is left out; SUITE itself is required.
# PACSD_DEBIAN_MIRROR overrides them with SUITE from that mirror.
debian_sources() {
  SOURCES=()
  if [ -n "${PACSD_DEBIAN_MIRROR:-}" ]; then
    SOURCES=("deb ${PACSD_DEBIAN_MIRROR%/} $SUITE main")
    return
  fi
  local entries e uri suffix
  mapfile -t entries < <(apt_sources)
  for suffix in "" -updates -security; do
    uri=""
    for e in "${entries[@]}"; do
      if [ "${e#* }" = "$SUITE$suffix" ]; then uri=${e%% *}; break; fi
    done
    if [ -z "$uri" ]; then
      for e in "${entries[@]}"; do
        if [ "${e#* }" = "$HOST_SUITE$suffix" ]; then uri=${e%% *}; break; fi
      done
    fi
    if [ -n "$uri" ]; then
      SOURCES+=("deb ${uri%/} $SUITE$suffix main")
    elif [ -z "$suffix" ]; then
      die "no 'deb' source for $SUITE or $HOST_SUITE in /etc/apt/sources.list{,.d}; set PACSD_DEBIAN_MIRROR"
    fi
  done
}

# need_mmdebstrap installs mmdebstrap from the machine's apt sources when it
# is missing, and checks for root.
need_mmdebstrap() {
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "mmdebstrap is missing; install it ('apt-get install --no-install-recommends mmdebstrap') or run as root"
    step "installing mmdebstrap from the machine's apt sources"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
      { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; } ||
      die "could not install mmdebstrap"
  fi
  [ "$(id -u)" -eq 0 ] || die "building the root file system needs root (mmdebstrap --mode=root)"
}

# debian_import CACHE ID_FILE MESSAGE [MMDEBSTRAP_OPTION | docker import
# --change ...]...: a minbase root file system of SUITE from SOURCES (the
# .debs in CACHE reused, and CACHE refreshed with exactly this build's by
# hooks/customize.sh), slimmed, streamed into docker import with the label
# io.pacsd.recipe.base=HASH; the image's ID goes to ID_FILE. Options that
# begin with --change go to docker import, the others to mmdebstrap.
debian_import() {
  local cache=$1 idfile=$2 message=$3 a
  shift 3
  local mm=() changes=()
  for a in "$@"; do
    case $a in --change=*) changes+=(--change "${a#--change=}") ;; *) mm+=("$a") ;; esac
  done
  mkdir -p "$cache"
  log "  release: Debian $SUITE; sources: $(printf '%s; ' "${SOURCES[@]}")"
  log "  package cache: $cache ($(find "$cache" -name '*.deb' | wc -l) .debs)"
  # dpkg leaves these out of every package: documentation, manuals, translations.
  # shellcheck disable=SC2016
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --aptopt='APT::Install-Recommends "false"' \
    --aptopt='Acquire::Retries "3"' \
    --skip=essential/unlink \
    --dpkgopt='force-unsafe-io' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="cp $(printf '%q' "$cache")/*.deb \"\$1/var/cache/apt/archives/\" 2>/dev/null || true" \
    --customize-hook="sh $(printf '%q' "$HERE/hooks/customize.sh") \"\$1\" $(printf '%q' "$cache")" \
    "${mm[@]}" \
    "$SUITE" - "${SOURCES[@]}" 2> >(stamp) |
    docker import --message "$message" --change "LABEL io.pacsd.recipe.base=$HASH" "${changes[@]}" - >"$idfile" || {
    # docker import takes even the empty stream of a failed bootstrap: drop it.
    [ ! -s "$idfile" ] || docker rmi "$(cat "$idfile")" >/dev/null 2>&1 || true
    die "bootstrapping the root file system failed (see the mmdebstrap messages above)"
  }
}

# remove_replaced "OLD_IDS" TAG...: the images a build replaced, now
# untagged, are removed unless a container still uses them (docker rmi
# without -f refuses then) or they are still one of TAGs.
remove_replaced() {
  local old=$1 id t keep
  shift
  for id in $old; do
    keep=0
    for t in "$@"; do [ "$id" != "$(id_of "$t")" ] || keep=1; done
    if [ "$keep" = 0 ] && [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; then
      docker rmi "$id" >/dev/null 2>&1 && log "  removed the replaced image ${id#sha256:}" || true
    fi
  done
}
