#!/usr/bin/env bash
# Fetches Redis's own Tcl test suite from Debian's `redis` source package into DEST/redis-7.0.15.
#
#   tests/compat/fetch_redis_tests.sh DEST
#
# The suite is fetched at test time and never committed (DESIGN.md §9, §10). The version is the
# one of the installed redis-server package, so the tests match the Redis we validate against.
# Debian's source package carries Debian's patches (security fixes touch tests too), and
# `dpkg-source -x` applies them exactly as Debian's build does.
#
# Idempotent: when DEST already holds the wanted version nothing is downloaded. Otherwise it adds
# a deb-src twin of the machine's Debian apt sources (Debian entries only, never third-party
# repositories), runs `apt-get update` only when that twin was just written or apt still knows no
# redis source, downloads the source package into DEST/download and unpacks it.
#
# Runs as root without sudo, and with sudo otherwise (only for the apt configuration and update).
# Progress goes to stderr; the last line on stdout is the path of the unpacked source tree.
set -euo pipefail

readonly kUpstreamVersion=7.0.15
readonly kTwinFile=/etc/apt/sources.list.d/weft-deb-src.sources

die() {
  echo "fetch_redis_tests: $*" >&2
  exit 1
}
log() { echo "fetch_redis_tests: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 DEST"
dest=$1
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
source_dir=$dest/redis-$kUpstreamVersion
stamp=$source_dir/.weft-source-version

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot configure apt"
  sudo="sudo"
fi

# The Debian source version to fetch: the installed redis-server's, when it is the upstream
# version this suite belongs to.
installed_version=$(dpkg-query -W -f='${source:Version}' redis-server 2>/dev/null || true)
upstream_of() { local v=${1#*:}; echo "${v%-*}"; }
wanted_version=""
if [ -n "$installed_version" ] && [ "$(upstream_of "$installed_version")" = "$kUpstreamVersion" ]; then
  wanted_version=$installed_version
else
  log "installed redis-server is '${installed_version:-absent}', not $kUpstreamVersion;" \
    "will take the newest $kUpstreamVersion source apt knows"
fi

if [ -f "$source_dir/tests/test_helper.tcl" ] && [ -f "$stamp" ] &&
  { [ -z "$wanted_version" ] || [ "$(cat "$stamp")" = "$wanted_version" ]; }; then
  log "already present: $source_dir ($(cat "$stamp"))"
  echo "$source_dir"
  exit 0
fi

command -v dpkg-source >/dev/null 2>&1 || die "dpkg-source missing: install dpkg-dev (scripts/setup)"

# Prints every redis source version apt knows, one per line (with epoch, as in Sources).
known_source_versions() {
  apt-cache showsrc --only-source redis 2>/dev/null | awk '/^Version:/ { print $2 }'
}
# True when apt knows the source version we want (or any $kUpstreamVersion when none is pinned).
source_known() {
  local v
  while read -r v; do
    if [ -n "$wanted_version" ]; then
      [ "$v" = "$wanted_version" ] && return 0
    elif [ "$(upstream_of "$v")" = "$kUpstreamVersion" ]; then
      return 0
    fi
  done < <(known_source_versions)
  return 1
}

# Writes to stdout a deb822 file with one `Types: deb-src` stanza per enabled Debian `deb` entry
# of the machine's sources: deb822 stanzas are copied with their URIs, Suites, Components and
# Signed-By (an inline key block too) and only their Types changed; one-line entries of
# sources.list are converted. An entry counts as Debian's when a URI is on debian.org or it is
# signed by the Debian archive keyring. Entries that already provide deb-src are left out.
debian_deb_src_twin() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    if [ ! -f "$f" ] || [ "$f" = "$kTwinFile" ]; then continue; fi
    awk -v RS= -v ORS='\n\n' '
      {
        n = split($0, lines, "\n"); out = ""; types = ""; uris = ""; signed = ""; enabled = "yes"
        for (i = 1; i <= n; i++) {
          line = lines[i]
          if (line ~ /^#/) continue
          if (tolower(line) ~ /^types:/) { types = line; sub(/^[^:]*:[ \t]*/, "", types); continue }
          if (tolower(line) ~ /^uris:/) uris = line
          if (tolower(line) ~ /^signed-by:/) signed = line
          if (tolower(line) ~ /^enabled:/) { enabled = tolower(line); sub(/^[^:]*:[ \t]*/, "", enabled) }
          out = out line "\n"
        }
        if (enabled == "no") next
        if ((" " types " ") !~ / deb /) next
        if ((" " types " ") ~ / deb-src /) next
        if (uris !~ /:\/\/([A-Za-z0-9.-]+\.)?debian\.org(\/|[ \t]|$)/ && signed !~ /debian-archive-keyring/) next
        printf "Types: deb-src\n%s\n", out
      }' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    awk '
      $1 != "deb" { next }
      {
        opts = ""; i = 2
        if ($2 ~ /^\[/) {
          while (i <= NF) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } i++ }
        }
        uri = $i; suite = $(i + 1); comps = ""
        for (j = i + 2; j <= NF; j++) comps = comps " " $j
        signed = ""
        if (match(opts, /signed-by=[^] ]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
        if (uri !~ /:\/\/([A-Za-z0-9.-]+\.)?debian\.org(\/|$)/ && signed !~ /debian-archive-keyring/) next
        printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:%s\n", uri, suite, comps
        if (signed != "") printf "Signed-By: %s\n", signed
        printf "\n"
      }' /etc/apt/sources.list
  fi
}

twin_written=0
if ! source_known; then
  twin=$(debian_deb_src_twin)
  if [ -n "$twin" ]; then
    content="# Written by weft's tests/compat/fetch_redis_tests.sh: a deb-src twin of the machine's
# Debian apt sources, so that \`apt-get source redis\` can fetch Redis's Tcl test suite.
$twin"
    if [ ! -f "$kTwinFile" ] || [ "$(cat "$kTwinFile")" != "$content" ]; then
      log "writing $kTwinFile"
      printf '%s\n' "$content" | $sudo tee "$kTwinFile" >/dev/null
      twin_written=1
    fi
  elif [ ! -f "$kTwinFile" ]; then
    log "no Debian deb entries found to twin; relying on existing deb-src entries"
  fi
fi

if [ "$twin_written" -eq 1 ] || ! source_known; then
  log "apt-get update"
  $sudo apt-get update -qq >&2 || die "apt-get update failed"
fi

if [ -z "$wanted_version" ]; then
  wanted_version=$(known_source_versions | while read -r v; do
    [ "$(upstream_of "$v")" = "$kUpstreamVersion" ] && echo "$v"
  done | sort -V | tail -n1)
  [ -n "$wanted_version" ] || die "apt knows no redis $kUpstreamVersion source package"
fi
source_known || die "apt knows no redis source version $wanted_version (known: $(known_source_versions | tr '\n' ' '))"

# apt 2.6 matches `redis=VERSION` against the full version, epoch included ("5:7.0.15-1~...");
# without the epoch it finds nothing. The downloaded files are named without the epoch.
version_no_epoch=${wanted_version#*:}
download_dir=$dest/download
mkdir -p "$download_dir"
dsc=$download_dir/redis_$version_no_epoch.dsc
if [ ! -f "$dsc" ]; then
  log "downloading source package redis=$wanted_version"
  # apt downloads as the unprivileged _apt user when it can write here; otherwise, as root, it
  # downloads unsandboxed and says so. Either way the files are checked against the signed index.
  (cd "$download_dir" && apt-get source --download-only -qq "redis=$wanted_version" >&2) ||
    die "apt-get source --download-only redis=$wanted_version failed"
fi
[ -f "$dsc" ] || die "expected $dsc after download"

# Unpack beside the destination and move it into place, so an interrupted run never leaves a
# half-unpacked tree that a later run would take for complete.
tmp=$(mktemp -d "$dest/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "unpacking $dsc"
# The .dsc and tarballs were verified by apt against the signed Sources index; without the
# Debian developers' keyring installed dpkg-source cannot check the .dsc signature itself.
dpkg-source --no-check -x "$dsc" "$tmp/redis" >&2 || die "dpkg-source -x failed"
[ -f "$tmp/redis/tests/test_helper.tcl" ] || die "unpacked source has no tests/test_helper.tcl"
echo "$wanted_version" >"$tmp/redis/.weft-source-version"
rm -rf "$source_dir"
mv "$tmp/redis" "$source_dir"
log "ready: $source_dir ($wanted_version)"
echo "$source_dir"
