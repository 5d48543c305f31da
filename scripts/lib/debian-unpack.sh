# Shared by scripts/fetch-haproxy.sh and scripts/fetch-redis.sh (sourced, not run): download a
# Debian package and the shared libraries it links against with apt-get, and unpack them with
# `dpkg -x` into a private root, without installing anything system-wide.
#
# apt runs with a private configuration (sources list, lists, cache, empty dpkg status, no hooks),
# so the host's apt state is left untouched. The mirror is the one the host already uses, read at
# run time (or $DEBIAN_MIRROR if set). Packages are checked against the archive keyring.
#
# The caller sets log_tag before sourcing.

keyring=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf '[%s] %s\n' "${log_tag:-fetch}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_apt() {
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "apt-get and dpkg are required (Debian or a derivative)"
  [[ -r "$keyring" ]] || die "$keyring is missing: apt-get update && apt-get install debian-archive-keyring"
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

# The given packages and their runtime dependencies restricted to shared libraries (lib*, zlib*),
# followed transitively; alternatives resolve to their first choice. Tools such as
# adduser or dpkg are not needed to run the binaries.
library_closure() {
  local conf=$1
  shift
  local -A seen=()
  local queue=("$@") pkg dep
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

# Downloads the packages of $suite (and their library closure) and unpacks them into $dir/root.
unpack_suite() {
  local dir=$1 suite=$2
  shift 2
  local mirror conf packages deb
  mirror=$(find_mirror)
  log "$suite: updating package lists from $mirror"
  write_apt_conf "$dir" "$suite" "$mirror"
  conf="$dir/apt.conf"
  apt-get -c "$conf" -q update >"$dir/update.log" 2>&1 || { cat "$dir/update.log" >&2; die "$suite: apt-get update failed"; }
  # apt-get update exits 0 on some fetch failures; an empty cache would only show up later.
  if grep -q '^[WE]:' "$dir/update.log"; then cat "$dir/update.log" >&2; fi

  mapfile -t packages < <(library_closure "$conf" "$@")
  log "$suite: downloading ${packages[*]}"
  rm -f "$dir"/debs/*.deb
  (cd "$dir/debs" && apt-get -c "$conf" -q download "${packages[@]}" >"$dir/download.log" 2>&1) ||
    { cat "$dir/download.log" >&2; die "$suite: apt-get download failed"; }

  # Unpack into a fresh root so a previous, interrupted run cannot leave stale files.
  rm -rf "$dir/root" "$dir/root.tmp"
  mkdir -p "$dir/root.tmp"
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root.tmp"; done
  mv "$dir/root.tmp" "$dir/root"
  # apt's binary caches (about 100 MB a suite) only served the look-ups above; the next run rebuilds them.
  rm -f "$dir"/apt-cache/*.bin
}

# Writes an executable wrapper at $wrapper that runs $program (a path inside the root) through the
# root's own dynamic loader and libraries (a newer suite's libraries than the host's would not load
# with the host's loader). The wrapper finds the root relative to itself ($root_from_wrapper), so
# the checkout can move; exec keeps the pid: it is the one of the program itself.
write_loader_wrapper() {
  local sysroot=$1 root_from_wrapper=$2 program=$3 wrapper=$4 description=$5
  local loader libc_dir multiarch
  # Loader and libc are looked up rather than assumed: bookworm's libc6 ships them
  # under /lib (with an absolute /lib64 symlink that would escape the root), trixie
  # and later under /usr/lib.
  loader=$(find "$sysroot" -type f -name 'ld-linux*.so*' -print -quit)
  libc_dir=$(dirname "$(find "$sysroot" -name 'libc.so.6' -print -quit)")
  [[ -n "$loader" && -e "$sysroot/$program" && "$libc_dir" != . ]] ||
    die "loader, libc or $program missing from $sysroot"
  multiarch=${libc_dir##*/}
  mkdir -p "$(dirname "$wrapper")"
  cat >"$wrapper.tmp" <<WRAPPER
#!/bin/sh
# $description
root=\$(cd "\$(dirname "\$0")/$root_from_wrapper" && pwd)
exec "\$root/${loader#"$sysroot/"}" \\
  --library-path "\$root/usr/lib/$multiarch:\$root/lib/$multiarch" \\
  "\$root/$program" "\$@"
WRAPPER
  chmod +x "$wrapper.tmp"
  mv "$wrapper.tmp" "$wrapper"
}
