#!/usr/bin/env bash
# Fetches HAProxy 2.6 (Debian bookworm), 3.0 (trixie) and 3.2 (sid) from Debian's
# packages for the end-to-end tests, without installing anything system-wide and
# without building: each suite's haproxy package and the libraries it links
# against are unpacked with `dpkg -x` into .cache/haproxy/<suite>/root, and run
# through the unpacked dynamic loader (trixie/sid libraries are newer than the
# host's), via a wrapper at .cache/haproxy/<version>/haproxy.
#
# apt runs with a private configuration (sources list, lists, cache, empty dpkg
# status, no hooks), so the host's apt state is left untouched. The mirror is the
# one the host already uses, read at run time (or $DEBIAN_MIRROR if set).
#
# Usage: scripts/fetch-haproxy.sh [--force] [2.6] [3.0] [3.2]   (default: all)
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_dir="$root_dir/.cache/haproxy"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
all_versions=(2.6 3.0 3.2)

log() { printf '[fetch-haproxy] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

suite_of() {
  case "$1" in
    2.6) echo bookworm ;;
    3.0) echo trixie ;;
    3.2) echo sid ;;
    *) die "unknown HAProxy version '$1' (known: ${all_versions[*]})" ;;
  esac
}

# The first non-security Debian mirror of the host's apt configuration: deb822
# sources first, then the one-line format.
find_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
    echo "${DEBIAN_MIRROR%/}"
    return
  fi
  local uri=''
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
    # "deb [options] URI suite components": the URI is the first field after the options.
    uri=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//' /etc/apt/sources.list |
      awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }')
  fi
  [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (set DEBIAN_MIRROR)"
  echo "${uri%/}"
}

# Private apt configuration for one suite. Read with -c, i.e. after the host's
# apt.conf.d, so it can override directories and drop the host's update hooks
# (AppStream/PackageKit refreshes would touch system state).
write_apt_conf() {
  local dir=$1 suite=$2 mirror=$3 arch
  arch=$(dpkg --print-architecture)
  mkdir -p "$dir/lists/partial" "$dir/apt-cache/archives/partial" "$dir/sources.list.d" "$dir/debs"
  : >"$dir/status"
  echo "deb [arch=$arch signed-by=$keyring] $mirror $suite main" >"$dir/sources.list"
  {
    echo "Dir::Etc::SourceList \"$dir/sources.list\";"
    echo "Dir::Etc::SourceParts \"$dir/sources.list.d\";"
    echo "Dir::Etc::Preferences \"/dev/null\";"
    echo "Dir::Etc::PreferencesParts \"/dev/null\";"
    echo "Dir::State::Lists \"$dir/lists\";"
    # An empty dpkg status: candidates come from this suite only, never from the host's installed versions.
    echo "Dir::State::status \"$dir/status\";"
    echo "Dir::Cache \"$dir/apt-cache\";"
    # Hosts (Docker images) often disable the binary cache; without it every apt-cache call re-parses the lists.
    echo "Dir::Cache::pkgcache \"pkgcache.bin\";"
    echo "Dir::Cache::srcpkgcache \"srcpkgcache.bin\";"
    echo "Acquire::Languages \"none\";"
    echo "#clear APT::Update::Pre-Invoke;"
    echo "#clear APT::Update::Post-Invoke;"
    echo "#clear APT::Update::Post-Invoke-Success;"
    # Snapshot mirrors serve expired Release files on purpose.
    if [[ "$mirror" == *snapshot* ]]; then echo "Acquire::Check-Valid-Until \"false\";"; fi
    # As root apt downloads as _apt, which cannot write into the project tree.
    if [[ $(id -u) -eq 0 ]]; then echo "APT::Sandbox::User \"root\";"; fi
  } >"$dir/apt.conf"
}

# Runtime dependencies of haproxy restricted to shared libraries (lib*, zlib*),
# followed transitively; alternatives resolve to their first choice. Tools such as
# adduser or dpkg are not needed to run the binary.
library_closure() {
  local conf=$1
  local -A seen=()
  local queue=(haproxy) pkg dep
  while ((${#queue[@]})); do
    pkg=${queue[0]}
    queue=("${queue[@]:1}")
    [[ -z "${seen[$pkg]:-}" ]] || continue
    seen[$pkg]=1
    echo "$pkg"
    while read -r dep; do
      if [[ "$dep" =~ ^(lib|zlib) && -z "${seen[$dep]:-}" ]]; then queue+=("$dep"); fi
    done < <(apt-cache -c "$conf" show --no-all-versions "$pkg" |
      sed -n -e 's/^Pre-Depends: //p' -e 's/^Depends: //p' |
      tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g')
  done
}

# The wrapper resolves the suite's root relative to itself, so the checkout can move.
write_wrapper() {
  local version=$1 suite=$2
  local sysroot="$cache_dir/$suite/root" loader libc_dir wrapper
  # Loader and libc are looked up rather than assumed: bookworm's libc6 ships them
  # under /lib (with an absolute /lib64 symlink that would escape the root), trixie
  # and later under /usr/lib.
  loader=$(find "$sysroot" -type f -name 'ld-linux*.so*' -print -quit)
  libc_dir=$(dirname "$(find "$sysroot" -name 'libc.so.6' -print -quit)")
  [[ -n "$loader" && -x "$sysroot/usr/sbin/haproxy" && "$libc_dir" != . ]] ||
    die "$suite: loader, libc or haproxy missing from $sysroot"
  local multiarch=${libc_dir##*/}
  mkdir -p "$cache_dir/$version"
  wrapper="$cache_dir/$version/haproxy"
  cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# HAProxy $version from Debian $suite, generated by scripts/fetch-haproxy.sh.
# exec keeps the pid: it is the one of haproxy itself.
root=\$(cd "\$(dirname "\$0")/../$suite/root" && pwd)
exec "\$root/${loader#"$sysroot/"}" \\
  --library-path "\$root/usr/lib/$multiarch:\$root/lib/$multiarch" \\
  "\$root/usr/sbin/haproxy" "\$@"
EOF
  chmod +x "$wrapper.tmp"
  mv "$wrapper.tmp" "$wrapper"
}

works() { [[ -x "$1" ]] && "$1" -v >/dev/null 2>&1; }

fetch() {
  local version=$1 suite dir mirror conf started=$SECONDS
  suite=$(suite_of "$version")
  dir="$cache_dir/$suite"
  if [[ -z "$force" ]] && works "$cache_dir/$version/haproxy"; then
    log "$version ($suite): already present"
    return
  fi
  [[ -r "$keyring" ]] || die "$keyring is missing: apt-get update && apt-get install debian-archive-keyring"
  mirror=$(find_mirror)
  log "$version ($suite): updating package lists from $mirror"
  write_apt_conf "$dir" "$suite" "$mirror"
  conf="$dir/apt.conf"
  apt-get -c "$conf" -q update >"$dir/update.log" 2>&1 || { cat "$dir/update.log" >&2; die "$suite: apt-get update failed"; }
  # apt-get update exits 0 on some fetch failures; an empty cache would only show up later.
  if grep -q '^[WE]:' "$dir/update.log"; then cat "$dir/update.log" >&2; fi

  local packages
  mapfile -t packages < <(library_closure "$conf")
  log "$version ($suite): downloading ${packages[*]}"
  rm -f "$dir"/debs/*.deb
  (cd "$dir/debs" && apt-get -c "$conf" -q download "${packages[@]}" >"$dir/download.log" 2>&1) ||
    { cat "$dir/download.log" >&2; die "$suite: apt-get download failed"; }

  # Unpack into a fresh root so a previous, interrupted run cannot leave stale files.
  rm -rf "$dir/root" "$dir/root.tmp"
  mkdir -p "$dir/root.tmp"
  local deb
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root.tmp"; done
  mv "$dir/root.tmp" "$dir/root"
  write_wrapper "$version" "$suite"
  works "$cache_dir/$version/haproxy" || { "$cache_dir/$version/haproxy" -v || true; die "$version: the unpacked haproxy does not run"; }
  log "$version ($suite): ready in $((SECONDS - started))s"
}

force=''
versions=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) suite_of "$arg" >/dev/null; versions+=("$arg") ;;
  esac
done
((${#versions[@]})) || versions=("${all_versions[@]}")

command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "apt-get and dpkg are required (Debian or a derivative)"
for version in "${versions[@]}"; do fetch "$version"; done
for version in "${versions[@]}"; do
  printf '%s: %s\n' "$version" "$("$cache_dir/$version/haproxy" -v | head -n1)"
done
