#!/usr/bin/env bash
# Builds, offline, a PostgreSQL image from Debian's `postgresql` package for
# the platform-mocks chart on machines without a registry (a laptop that can
# pull uses the official `postgres` image instead). The image follows the
# official image's contract (see postgres/docker-entrypoint.sh) and runs as
# uid/gid 999 like it.
#
#   e2e/images/postgres.sh                 build when missing; prints the image name
#   e2e/images/postgres.sh --print-image   print the image name, build nothing
#
# The tag is a content address: a digest of this script, postgres/ and
# DEBIAN_SUITE. It is separate from build.sh so the kind node image's tag
# does not change with it. The debootstrap'ed root filesystem is cached under
# ${DEVCTL_E2E_CACHE:-~/.cache/devctl-e2e}/rootfs. Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=/dev/null
. "$root/e2e/tools/versions.env"
cache=${DEVCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devctl-e2e}
repo=${DEVCTL_IMAGE_REPO:-devctl.local}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# rootfs_key covers what goes into the cached root filesystem; key adds the
# files layered on top of it.
rootfs_key=$( { cat "$here/postgres.sh"; echo "$DEBIAN_SUITE"; } | sha256sum | cut -c1-8)
key=$( (cd "$root" && for f in e2e/images/postgres.sh $(find e2e/images/postgres -type f | LC_ALL=C sort); do
  printf '%s\n' "$f"; cat "$f"; done; echo "$DEBIAN_SUITE") | sha256sum | cut -c1-8)
image=$repo/postgres:$DEBIAN_SUITE-$key

case "${1:-}" in
--print-image) echo "$image"; exit 0 ;;
"") ;;
*) echo "usage: $0 [--print-image]" >&2; exit 2 ;;
esac

start=$(date +%s)
say() { printf '[%4ds] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
die() { say "error: $*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

command -v docker >/dev/null || die "docker not found: install Docker (e.g. apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine: start dockerd or set DOCKER_HOST"
if have_image "$image"; then
  say "cached: $image"
  echo "$image"
  exit 0
fi

mkdir -p "$cache/rootfs"
exec 9>"$cache/.postgres-build.lock"
flock 9
if have_image "$image"; then
  echo "$image"
  exit 0
fi

rootfs=$cache/rootfs/postgres-$DEBIAN_SUITE-$rootfs_key.tar
if [ ! -s "$rootfs" ]; then
  [ "$(id -u)" = 0 ] || die "debootstrap needs root (run as root or with sudo)"
  command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
  say "rootfs: debootstrap $DEBIAN_SUITE with postgresql (cold: a few minutes)"
  work=$(mktemp -d "${TMPDIR:-/tmp}/devctl-postgres.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase --include=postgresql "$DEBIAN_SUITE" "$work/root" "$mirror" >"$work/log" 2>&1 || {
    tail -30 "$work/log" >&2; die "debootstrap failed (is $mirror reachable?)"; }
  r=$work/root
  # The package's default cluster is not used: the entrypoint runs initdb.
  rm -rf "$r"/etc/postgresql/* "$r"/var/lib/postgresql/*
  # uid/gid 999 as in the official image, so one securityContext fits both.
  chroot "$r" groupmod -g 999 postgres
  chroot "$r" usermod -u 999 -g 999 postgres
  chroot "$r" sh -c 'for d in /var/lib/postgresql /var/run/postgresql /var/log/postgresql; do chown -R postgres:postgres "$d"; done'
  chroot "$r" apt-get clean
  # JIT pulls in LLVM and Z3 (130 MB, a third of the image, loaded into every
  # environment); a throw-away database does not need it, and without
  # llvmjit.so PostgreSQL runs with JIT unavailable (the chart sets jit=off).
  rm -rf "$r"/usr/lib/postgresql/*/lib/llvmjit* "$r"/usr/lib/postgresql/*/lib/bitcode
  rm -f "$r"/usr/lib/*/libLLVM-*.so* "$r"/usr/lib/*/libz3.so*
  rm -rf "$r"/var/lib/apt/lists/* "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/locale/* \
    "$r"/var/log/*.log "$r"/var/cache/debconf/*-old
  bindir=$(cd "$r" && ls -d usr/lib/postgresql/*/bin | head -n 1)
  [ -x "$r/$bindir/postgres" ] || die "no postgres binary under $r/usr/lib/postgresql"
  echo "/$bindir" >"$r/.pgbin"
  mkdir -p "$r/docker-entrypoint-initdb.d" "$r/var/lib/postgresql/data"
  chroot "$r" chown postgres:postgres /var/lib/postgresql/data
  chmod 0777 "$r/var/lib/postgresql/data"
  tar -C "$r" --numeric-owner -cf "$rootfs.tmp" .
  mv "$rootfs.tmp" "$rootfs"
fi

bindir=$(tar -xOf "$rootfs" ./.pgbin)
say "docker import -> $image"
docker import \
  --change "ENV PATH=$bindir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV PGDATA=/var/lib/postgresql/data" \
  --change "ENV LANG=C.UTF-8" \
  --change "USER 999:999" \
  --change "EXPOSE 5432" \
  --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
  --change 'CMD ["postgres"]' \
  "$rootfs" "$image-rootfs" >/dev/null
# The entrypoint as a layer of its own (editing it does not rebuild the root
# filesystem); `docker import --change` cannot set STOPSIGNAL, a build can.
ctx=$(mktemp -d)
install -m 0755 "$here/postgres/docker-entrypoint.sh" "$ctx/docker-entrypoint.sh"
printf 'FROM %s\nCOPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh\nSTOPSIGNAL SIGINT\n' "$image-rootfs" >"$ctx/Dockerfile"
out=$(DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" 2>&1) || { printf '%s\n' "$out" >&2; die "docker build $image failed"; }
rm -rf "$ctx"
docker rmi "$image-rootfs" >/dev/null
say "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$image"
