#!/usr/bin/env bash
# Builds, offline and from source, the two images the vcluster chart
# (github.com/loft-sh/vcluster, VCLUSTER_VERSION) runs for `cluster.provider:
# vcluster`:
#   - the syncer image: the `vcluster` binary (built from a writable copy of
#     the module directory, as the main module) and a static kine (SQLite) on a
#     small glibc base taken from the Debian root filesystem of the node image
#     builder (libc, the loader, NSS, CA bundle, a static busybox);
#   - the "kubernetes" image of the chart's init container, which copies
#     kube-apiserver, kube-controller-manager and kube-scheduler into the syncer
#     pod: the KUBERNETES_VERSION binaries build.sh already builds, plus `cp`.
# CoreDNS is not built here: devctl runs the image the host cluster's own
# CoreDNS runs (a kind node image has it preloaded).
#
#   e2e/images/vcluster.sh                 build what is missing; prints the two images (syncer, kubernetes)
#   e2e/images/vcluster.sh --print-images  print the two content-addressed names, build nothing
#
# Tags are content addresses (a digest of this script and every input). Each
# image is also tagged with the stable name devctl looks for by default,
# devctl.local/vcluster:$VCLUSTER_VERSION and
# devctl.local/vcluster-kubernetes:$KUBERNETES_VERSION. Binaries are cached under
# ${DEVCTL_E2E_CACHE:-~/.cache/devctl-e2e}. Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tools=$root/e2e/tools
# shellcheck source=/dev/null
. "$tools/versions.env"
cache=${DEVCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devctl-e2e}
repo=${DEVCTL_IMAGE_REPO:-devctl.local}
# v0.30.0 is the newest vcluster the Go module proxy serves. Kept here, not in
# versions.env, so the kind node image's tag does not change with it.
VCLUSTER_VERSION=v0.30.0
KINE_VERSION=v0.14.4
export DOCKER_BUILDKIT=0

key=$( (cd "$root" && for f in e2e/images/vcluster.sh e2e/tools/versions.env e2e/tools/build-k8s.sh \
  e2e/tools/k8s/go.mod e2e/tools/k8s/go.sum e2e/images/rootfs.sh; do printf '%s\n' "$f"; cat "$f"; done) |
  sha256sum | cut -c1-8)
syncer_image=$repo/vcluster:${VCLUSTER_VERSION#v}-$key
k8s_image=$repo/vcluster-kubernetes:$KUBERNETES_VERSION-$key
syncer_alias=$repo/vcluster:${VCLUSTER_VERSION#v}
k8s_alias=$repo/vcluster-kubernetes:$KUBERNETES_VERSION

case "${1:-}" in
--print-images) echo "$syncer_image"; echo "$k8s_image"; exit 0 ;;
"") ;;
*) echo "usage: $0 [--print-images]" >&2; exit 2 ;;
esac

start=$(date +%s)
say() { printf '[%4ds] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
die() { say "error: $*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
dbuild() {
  local out
  out=$(docker build -q -t "$1" "$2" 2>&1) || { printf '%s\n' "$out" >&2; die "docker build $1 failed"; }
}
done_images() {
  docker tag "$syncer_image" "$syncer_alias"
  docker tag "$k8s_image" "$k8s_alias"
  echo "$syncer_image"
  echo "$k8s_image"
}

command -v docker >/dev/null || die "docker not found: install Docker (e.g. apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine: start dockerd or set DOCKER_HOST"
if have_image "$syncer_image" && have_image "$k8s_image"; then
  say "cached: $syncer_image"
  say "cached: $k8s_image"
  done_images
  exit 0
fi
command -v go >/dev/null || die "go not found: install Go $(sed -n 's/^go //p' "$root/go.mod") or newer"
command -v gcc >/dev/null || die "gcc not found: kine's SQLite needs cgo (apt-get install gcc libc6-dev)"

mkdir -p "$cache"
exec 9>"$cache/.vcluster-build.lock"
if ! flock -n 9; then
  say "another vcluster.sh holds $cache/.vcluster-build.lock, waiting"
  flock 9
fi
if have_image "$syncer_image" && have_image "$k8s_image"; then
  done_images
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/devctl-vcluster.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# modcopy MODULE@VERSION DIR: a writable copy of a module's directory, so it
# can be built as the main module (its go.mod then governs its dependencies).
modcopy() {
  local dir
  dir=$(cd "$root" && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || die "go mod download $1 failed"
  cp -r "$dir" "$2"
  chmod -R u+w "$2"
}

# --- binaries -------------------------------------------------------------------
vcluster_bin=$cache/vcluster-$VCLUSTER_VERSION/vcluster
if [ ! -x "$vcluster_bin" ]; then
  say "vcluster $VCLUSTER_VERSION: building the syncer (cold: about 11 minutes on 2 idle cores, 109 MB)"
  modcopy "github.com/loft-sh/vcluster@$VCLUSTER_VERSION" "$work/vcluster"
  mkdir -p "$(dirname "$vcluster_bin")"
  (cd "$work/vcluster" && CGO_ENABLED=0 go build -mod=mod -trimpath -buildvcs=false \
    -ldflags "-s -w -X github.com/loft-sh/vcluster/pkg/telemetry.SyncerVersion=${VCLUSTER_VERSION#v}" \
    -o "$vcluster_bin.tmp.$$" ./cmd/vcluster) >&2
  mv "$vcluster_bin.tmp.$$" "$vcluster_bin"
  say "vcluster: built -> $vcluster_bin"
fi

kine_bin=$cache/kine-$KINE_VERSION/kine
if [ ! -x "$kine_bin" ]; then
  say "kine $KINE_VERSION: building (cgo, static; cold: a few minutes)"
  export GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}github.com/k3s-io/kine
  modcopy "github.com/k3s-io/kine@$KINE_VERSION" "$work/kine"
  mkdir -p "$(dirname "$kine_bin")"
  (cd "$work/kine" && CGO_ENABLED=1 go build -mod=mod -trimpath -buildvcs=false \
    -tags netgo,osusergo,sqlite_omit_load_extension \
    -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=$KINE_VERSION -extldflags -static" \
    -o "$kine_bin.tmp.$$" .) >&2
  mv "$kine_bin.tmp.$$" "$kine_bin"
  say "kine: built -> $kine_bin"
fi

k8s_bin=$cache/kubernetes-$KUBERNETES_VERSION/bin
cp_bins=(kube-apiserver kube-controller-manager kube-scheduler)
missing=0
for b in "${cp_bins[@]}"; do [ -x "$k8s_bin/$b" ] || missing=1; done
if [ "$missing" = 1 ]; then
  say "kubernetes $KUBERNETES_VERSION: control-plane binaries (the node image builder shares them; cold: 15-25 minutes)"
  "$tools/build-k8s.sh" "${cp_bins[@]}" >&2
fi

# --- the glibc base ----------------------------------------------------------------
base_key=$( { cat "$here/rootfs.sh"; echo "$DEBIAN_SUITE"; } | sha256sum | cut -c1-8)
rootfs=$cache/rootfs/debian-$DEBIAN_SUITE-$base_key.tar
if [ ! -s "$rootfs" ]; then
  say "rootfs: debootstrap $DEBIAN_SUITE (shared with the node image; cold: about 10 minutes)"
  mkdir -p "$cache/rootfs"
  "$here/rootfs.sh" "$rootfs"
fi
base=$work/base
mkdir -p "$base"
tar -C "$base" -xf "$rootfs" ./bin ./lib ./lib64 ./sbin ./etc/ssl/certs/ca-certificates.crt \
  ./usr/lib64/ld-linux-x86-64.so.2 ./usr/bin/busybox \
  ./usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 ./usr/lib/x86_64-linux-gnu/libc.so.6 \
  ./usr/lib/x86_64-linux-gnu/libm.so.6 ./usr/lib/x86_64-linux-gnu/libresolv.so.2 \
  ./usr/lib/x86_64-linux-gnu/libpthread.so.0 ./usr/lib/x86_64-linux-gnu/libdl.so.2 \
  ./usr/lib/x86_64-linux-gnu/libnss_files.so.2 ./usr/lib/x86_64-linux-gnu/libnss_dns.so.2
mkdir -p "$base/usr/sbin" "$base/tmp" "$base/usr/local/bin"
chmod 1777 "$base/tmp"
for applet in sh cp ls cat mkdir rm mv ln ps env; do ln -sf busybox "$base/usr/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$base/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$base/etc/group"
printf 'hosts: files dns\n' >"$base/etc/nsswitch.conf"

# --- images ---------------------------------------------------------------------
if ! have_image "$syncer_image"; then
  ctx=$work/ctx-syncer
  mkdir -p "$ctx"
  cp -a "$base" "$ctx/rootfs"
  cp "$vcluster_bin" "$ctx/rootfs/vcluster"
  cp "$kine_bin" "$ctx/rootfs/usr/local/bin/kine"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /
ENTRYPOINT ["/vcluster", "start"]
EOF
  dbuild "$syncer_image" "$ctx"
  say "built $syncer_image ($(docker image inspect -f '{{.Size}}' "$syncer_image" | awk '{printf "%.0f MB", $1/1e6}'))"
fi
if ! have_image "$k8s_image"; then
  ctx=$work/ctx-kubernetes
  mkdir -p "$ctx"
  cp -a "$base" "$ctx/rootfs"
  mkdir -p "$ctx/rootfs/kubernetes"
  for b in "${cp_bins[@]}"; do cp "$k8s_bin/$b" "$ctx/rootfs/kubernetes/$b"; done
  printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' >"$ctx/Dockerfile"
  dbuild "$k8s_image" "$ctx"
  say "built $k8s_image ($(docker image inspect -f '{{.Size}}' "$k8s_image" | awk '{printf "%.0f MB", $1/1e6}'))"
fi
done_images
