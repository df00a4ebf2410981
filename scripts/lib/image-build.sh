# shellcheck shell=bash
# Shared by scripts/build-synapse-image and scripts/build-harness-image (sourced, not run): the
# container engine to import into, and a cached minimal Debian root file system. Both scripts
# define say() and die() before sourcing this.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The engine the harness will look at: the one DOCKER_HOST names (or Docker's socket), through
# its own command-line tool. Sets `engine`.
choose_engine() {
  case "${DOCKER_HOST:-}" in
    *podman*) engine=podman ;;
    *) if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
       elif command -v podman >/dev/null; then engine=podman
       else die "no container engine here: run scripts/setup-container-engine first"; fi ;;
  esac
}

# The value of LABEL in IMAGE, or nothing when the image is absent.
image_label() { $engine image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

image_build_cache="${DEC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/delayed-events-conformance}/image-build"
mkdir -p "$image_build_cache"
case "$(uname -m)" in
  x86_64) debian_arch=amd64 ;;
  aarch64) debian_arch=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
debian_suite=bookworm

# The Debian mirror this machine's apt uses (it is reachable from here), else deb.debian.org.
debian_mirror() {
  [ -n "${DEBIAN_MIRROR:-}" ] && { echo "$DEBIAN_MIRROR"; return; }
  local uri suite=$debian_suite
  uri="$(awk '
      /^URIs:/ { uris = $2 } /^Suites:/ { suites = $0 }
      /^$/ { if (suites ~ /(^| )'$suite'( |$)/ && uris !~ /security/) { print uris; exit } uris = ""; suites = "" }
      END { if (suites ~ /(^| )'$suite'( |$)/ && uris !~ /security/) print uris }
    ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)"
  [ -z "$uri" ] && uri="$(awk '$1 == "deb" && $0 ~ / '$suite' / && $0 !~ /security/ {
      for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)"
  echo "${uri:-http://deb.debian.org/debian}"
}

# Prints the path of a tarball of Debian minbase plus PACKAGES (comma-separated), made with
# debootstrap the first time and cached (the same PACKAGES share one tarball). WORK is a scratch
# folder.
debian_rootfs() { # PACKAGES WORK
  local packages=$1 work=$2 base rootfs mirror
  base="$image_build_cache/rootfs-$debian_suite-$debian_arch-$(echo "$packages" | md5sum | cut -c1-8).tar"
  if [ ! -s "$base" ]; then
    if ! command -v debootstrap >/dev/null; then
      command -v apt-get >/dev/null || die "debootstrap is missing and this is not a Debian/Ubuntu machine"
      say "installing debootstrap ..."
      as_root apt-get update -qq >&2
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 debootstrap debian-archive-keyring >&2
    fi
    mirror="$(debian_mirror)"
    say "debootstrap $debian_suite ($debian_arch) from $mirror (first build only) ..."
    rootfs="$work/base"
    as_root debootstrap --variant=minbase --arch="$debian_arch" --include="$packages" \
      --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
      "$debian_suite" "$rootfs" "$mirror" >"$image_build_cache/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $image_build_cache/debootstrap.log (set DEBIAN_MIRROR to another mirror?)"
    as_root chroot "$rootfs" apt-get clean
    as_root rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
      "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log
    as_root tar -C "$rootfs" --numeric-owner -c . >"$base.part"
    mv "$base.part" "$base"
    as_root rm -rf --one-file-system "$rootfs"
  fi
  echo "$base"
}
