#!/usr/bin/env bash
# Usage: tools/install-pythons.sh VERSION...   (e.g. 3.13 3.14 3.15)
#
# Puts Debian sid's CPython builds next to the system, without touching the
# system's apt sources, lists or installed packages: apt runs with a private
# configuration (own sources list, lists, cache and an empty dpkg status) under
# $PYPROFD_PYTHONS, the .debs are only unpacked (dpkg-deb -x), and patchelf makes
# the interpreter use the unpacked sid loader and libraries, so the system's glibc
# stays as it is.
#
# stdout: one interpreter path per version installed: $CACHE/X.Y/root/usr/bin/pythonX.Y,
# the real (patched) ELF, in the order asked.
# stderr: logs, and one "install-pythons: X.Y: ..." line per version that failed.
# Exit: 0 if every version is installed, 1 if any failed (the others are still
# installed and printed: a missing 3.15 must not cost us 3.14), 2 on a usage error
# or when the private index or patchelf cannot be had (nothing can work then).
# Note: install_one runs under "||", where set -e is off, hence explicit checks.
set -euo pipefail

CACHE=${PYPROFD_PYTHONS:-$HOME/.cache/pyprofd/pythons}
SUITE=${PYPROFD_SUITE:-sid}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
log() { echo "install-pythons: $*" >&2; }

[ $# -gt 0 ] || { echo "usage: $0 VERSION... (e.g. 3.13 3.14)" >&2; exit 2; }

# Bump when the layout of an installed version changes, so stamps go stale.
STAMP_FORMAT=2

# The mirror the system already uses (only the Debian archive is reachable here):
# the first non-security "debian" URI in either one-line or deb822 sources.
mirror() {
  {
    cat /etc/apt/sources.list 2>/dev/null || true
    cat /etc/apt/sources.list.d/*.list 2>/dev/null || true
    sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
  } | grep -v '^[[:space:]]*#' | grep -oE '(https?|file)://[^[:space:]]+' |
    grep -E '/debian/?$' | head -n1
}

APT_DIR=$CACHE/apt
APT_OPTS=()
apt_setup() {
  local uri
  uri=$(mirror) || true
  uri=${PYPROFD_MIRROR:-${uri:-http://deb.debian.org/debian}}
  mkdir -p "$APT_DIR"/{lists/partial,cache/archives/partial,state,prefs.d}
  : >"$APT_DIR/status"   # empty: the resolver must not assume host packages
  echo "deb [signed-by=$KEYRING] ${uri%/} $SUITE main" >"$APT_DIR/sources.list"
  APT_OPTS=(
    -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=/dev/null"        # host pins are for bookworm
    -o "Dir::Etc::PreferencesParts=$APT_DIR/prefs.d"
    -o "Dir::State=$APT_DIR/state"
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::State::status=$APT_DIR/status"
    -o "Dir::Cache=$APT_DIR/cache"
    -o "APT::Architecture=$(dpkg --print-architecture)"
    -o "APT::Architectures::=$(dpkg --print-architecture)"
    -o "APT::Sandbox::User=root"                 # we download into our own dirs
    -o "Acquire::Languages=none"
    -q
  )
  # One index refresh per day is plenty for a pinned-by-name download.
  if [ -z "$(find "$APT_DIR/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null)" ]; then
    log "updating private $SUITE index from $uri"
    apt-get "${APT_OPTS[@]}" update >&2 ||
      { log "cannot update the private $SUITE index from $uri"; exit 2; }
  fi
}

ensure_patchelf() {
  command -v patchelf >/dev/null && return
  log "installing Debian's patchelf (system apt)"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q patchelf >&2 ||
    { $sudo apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q patchelf >&2; } ||
    { log "cannot install patchelf"; exit 2; }
}

# Runtime closure of pythonX.Y from its Depends/Pre-Depends, followed through
# libraries only (lib*, and zlib1g which breaks the naming rule): tzdata, debconf,
# media-types etc. are not needed to run from an unpacked tree, and following them
# drags in debconf's alternatives (newt, slang...).
packages_for() {
  local v=$1; local seen=" " todo=("python$v") next p
  while [ ${#todo[@]} -gt 0 ]; do
    for p in "${todo[@]}"; do seen+="$p "; done
    mapfile -t next < <(apt-cache "${APT_OPTS[@]}" depends --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances "${todo[@]}" |
      sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^<>: ]*\).*/\2/p' |
      grep -E "^(lib|zlib1g|python$v)" | grep -vE -- '-(dev|doc|dbg)$' | sort -u)
    todo=(); for p in "${next[@]}"; do [[ $seen == *" $p "* ]] || todo+=("$p"); done
  done
  # headers (incl. internal/) and the shared libpython, for readers and tests
  # shellcheck disable=SC2086  # $seen is a space-separated list: split on purpose
  printf '%s\n' $seen "libpython$v-dev" "libpython$v" | sort -u
}

install_one() {
  local v=$1 dir=$CACHE/$1 root=$CACHE/$1/root
  local py=$root/usr/bin/python$v
  if [ -f "$dir/stamp" ] && [ "$(head -n1 "$dir/stamp")" = "$STAMP_FORMAT" ] && [ -x "$py" ]; then
    echo "$py"; return 0
  fi
  [ ${#APT_OPTS[@]} -gt 0 ] || apt_setup
  if ! apt-cache "${APT_OPTS[@]}" show "python$v-minimal" >/dev/null 2>&1; then
    log "$v: python$v-minimal is not in Debian $SUITE; skipped"; return 1
  fi
  local pkgs; mapfile -t pkgs < <(packages_for "$v")
  log "$v: downloading ${#pkgs[@]} packages: ${pkgs[*]}"
  rm -rf "$dir"; mkdir -p "$dir/debs" "$root"
  (cd "$dir/debs" && apt-get "${APT_OPTS[@]}" download "${pkgs[@]}" >&2) ||
    { log "$v: apt-get download failed"; return 1; }
  local deb; for deb in "$dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$root" || { log "$v: cannot unpack $(basename "$deb")"; return 1; }
  done

  # sid's libc needs sid's loader, and PT_INTERP is an absolute path (so the tree
  # is not relocatable: re-run after moving $PYPROFD_PYTHONS).
  local libdir; libdir=$(dirname "$(ls "$root"/usr/lib/*-linux-gnu/libc.so.6)")
  local ld; ld=$(find "$libdir" -maxdepth 1 -name 'ld-linux*.so.*' | head -n1)
  # DT_RPATH (not RUNPATH) of the executable also covers what dlopen'ed extension
  # modules need (_ssl -> libssl) and wins over LD_LIBRARY_PATH and the host's
  # ld.so.cache, so no bookworm library is mixed in.
  patchelf --set-interpreter "$ld" --force-rpath \
    --set-rpath "\$ORIGIN/../lib/$(basename "$libdir")" "$py" ||
    { log "$v: patchelf failed on $py"; return 1; }
  # No PYTHONHOME/wrapper needed: getpath finds root/usr/lib/python$v/os.py from
  # the executable's own location, and /proc/PID/exe stays the real interpreter.
  # A host (bookworm) library slipping in means a missing Depends above: refuse it.
  "$py" -c 'import asyncio, threading, json, zlib, pstats, marshal, ssl, sys
bad = [l.split()[-1] for l in open("/proc/self/maps") if ".so" in l and sys.argv[1] not in l]
sys.exit("host libraries: %s" % sorted(set(bad)) if bad else 0)' "$root/" ||
    { log "$v: unpacked interpreter does not start, lacks a module or uses host libraries"; return 1; }
  { echo "$STAMP_FORMAT"; "$py" -c 'import sys; print(sys.version.split()[0])'; } >"$dir/stamp"
  rm -rf "$dir/debs"   # the unpacked tree is all we use
  echo "$py"
}

mkdir -p "$CACHE"
ensure_patchelf
rc=0
for v in "$@"; do
  [[ $v =~ ^3\.[0-9]+$ ]] || { log "$v: not a version like 3.14"; rc=1; continue; }
  install_one "$v" || rc=1
done
exit $rc
