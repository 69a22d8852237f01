#!/usr/bin/env bash
# Builds, offline and from source, the images the e2e tests use:
#   - the kind node image: a debootstrap'ed Debian root filesystem, kind's own
#     node files (read from the sigs.k8s.io/kind module), the Kubernetes
#     binaries, and the control plane / CoreDNS / pause / storage images
#     preloaded into the node's containerd;
#   - the probe image: a static test program FROM scratch.
# Nothing is pulled and no prebuilt binary is downloaded: binaries come from
# the Go module proxy, packages from the Debian archive.
#
#   e2e/images/build.sh                     build what is missing; the node image is the last line of stdout
#   e2e/images/build.sh --print-image       print the node image name, build nothing
#   e2e/images/build.sh --print-probe-image print the probe image name, build nothing
#
# Image tags are content addresses: a digest of versions.env and every builder
# input. If both images exist in Docker the script finishes in seconds.
# Intermediate results (root filesystem, binaries) are cached under
# ${DEVCTL_E2E_CACHE:-~/.cache/devctl-e2e}. Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tools=$root/e2e/tools
# shellcheck source=/dev/null
. "$tools/versions.env"
cache=${DEVCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devctl-e2e}
repo=${DEVCTL_IMAGE_REPO:-devctl.local}
export CGO_ENABLED=0 DOCKER_BUILDKIT=0

# digest PATH...: a short digest of the names and contents of the given files
# (directories: their regular files, recursively), relative to the repository.
digest() {
  (cd "$root" && find "$@" -type f ! -name '*_test.go' | LC_ALL=C sort | while read -r f; do
    printf '%s\n' "$f"
    cat "$f"
  done) | sha256sum | cut -c1-8
}

probe_image=$repo/probe:$(digest e2e/images/probe)
node_image=$repo/kind-node:$KUBERNETES_VERSION-$(digest e2e/tools/versions.env e2e/tools/build-k8s.sh \
  e2e/tools/k8s/go.mod e2e/tools/k8s/go.sum e2e/tools/etcd e2e/tools/crictl e2e/tools/coredns \
  e2e/tools/local-path e2e/images/build.sh e2e/images/rootfs.sh e2e/images/node e2e/images/pause)

case "${1:-}" in
--print-image) echo "$node_image"; exit 0 ;;
--print-probe-image) echo "$probe_image"; exit 0 ;;
"") ;;
*) echo "usage: $0 [--print-image | --print-probe-image]" >&2; exit 2 ;;
esac

start=$(date +%s)
say() { printf '[%4ds] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
die() { say "error: $*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
# dbuild TAG DIR: docker build, quiet unless it fails.
dbuild() {
  local out
  out=$(docker build -q -t "$1" "$2" 2>&1) || { printf '%s\n' "$out" >&2; die "docker build $1 failed"; }
}

command -v docker >/dev/null || die "docker not found: install Docker (e.g. apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine: start dockerd or set DOCKER_HOST"

if have_image "$node_image" && have_image "$probe_image"; then
  say "cached: $probe_image"
  say "cached: $node_image"
  echo "$probe_image"
  echo "$node_image"
  exit 0
fi
command -v go >/dev/null || die "go not found: install Go $(sed -n 's/^go //p' "$root/go.mod") or newer"

# gobuild NAME DIR [go build args...]: builds in DIR once into
# $cache/bin/NAME-<digest of DIR>/NAME and prints that path.
gobuild() {
  local name=$1 moddir=$2; shift 2
  local out
  out=$cache/bin/$name-$(digest "${moddir#"$root"/}")
  if [ ! -x "$out/$name" ]; then
    say "$name: building from the Go module proxy (cold: minutes)"
    mkdir -p "$out"
    (cd "$moddir" && go build -trimpath -buildvcs=false -o "$out/$name.tmp.$$" "$@") >&2
    mv "$out/$name.tmp.$$" "$out/$name"
    say "$name: built -> $out/$name"
  fi
  echo "$out/$name"
}

# --- the probe image: independent of everything else, quick -----------------
if ! have_image "$probe_image"; then
  probe=$(gobuild probe "$here/probe" -ldflags "-s -w" .)
  ctx=$(mktemp -d)
  cp "$probe" "$ctx/probe"
  printf 'FROM scratch\nCOPY probe /probe\nUSER 65532:65532\nENTRYPOINT ["/probe"]\nCMD ["serve"]\n' >"$ctx/Dockerfile"
  dbuild "$probe_image" "$ctx"
  rm -rf "$ctx"
  say "built $probe_image"
fi
if have_image "$node_image"; then
  say "cached: $node_image"
  echo "$probe_image"
  echo "$node_image"
  exit 0
fi

# One node build at a time per cache; a second run waits, then finds the image.
mkdir -p "$cache"
exec 9>"$cache/.node-build.lock"
if ! flock -n 9; then
  say "another build.sh holds $cache/.node-build.lock, waiting"
  flock 9
fi
if have_image "$node_image"; then
  say "cached: $node_image"
  echo "$probe_image"
  echo "$node_image"
  exit 0
fi
say "building $node_image"
say "cold: about 45-50 minutes on 2 idle cores, mostly Go compilation (longer on a busy machine); with the caches under $cache warm: about 2-3 minutes"

# --- root filesystem ------------------------------------------------------------
base_key=$( { cat "$here/rootfs.sh"; echo "$DEBIAN_SUITE"; } | sha256sum | cut -c1-8)
rootfs=$cache/rootfs/debian-$DEBIAN_SUITE-$base_key.tar
base_image=$repo/kind-base:$DEBIAN_SUITE-$base_key
if ! have_image "$base_image"; then
  if [ ! -s "$rootfs" ]; then
    say "rootfs: debootstrap $DEBIAN_SUITE (cold: about 10 minutes)"
    mkdir -p "$cache/rootfs"
    "$here/rootfs.sh" "$rootfs"
  fi
  say "rootfs: docker import -> $base_image"
  docker import "$rootfs" "$base_image" >/dev/null
fi

# --- binaries ---------------------------------------------------------------------
etcd_dir=$cache/etcd-$ETCD_VERSION
etcd_stamp=$(cd "$tools/etcd" && cat go.mod go.sum main.go | sha256sum | cut -d' ' -f1)
if [ ! -x "$etcd_dir/etcd" ] || [ "$(cat "$etcd_dir/.stamp" 2>/dev/null)" != "$etcd_stamp" ]; then
  say "etcd $ETCD_VERSION: building (cold: about 3-5 minutes)"
  mkdir -p "$etcd_dir"
  (cd "$tools/etcd" && go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$etcd_dir/etcd.node.$$" .) >&2
  mv "$etcd_dir/etcd.node.$$" "$etcd_dir/etcd"
  echo "$etcd_stamp" >"$etcd_dir/.stamp"
fi
crictl=$(GONOSUMDB=k8s.io,sigs.k8s.io/cri-tools gobuild crictl "$tools/crictl" \
  -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl)
coredns=$(gobuild coredns "$tools/coredns" -ldflags "-s -w" .)
local_path=$(gobuild local-path-provisioner "$tools/local-path" \
  -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION" github.com/rancher/local-path-provisioner)
pause=$(gobuild pause "$here/pause" -ldflags "-s -w" .)

say "kubernetes $KUBERNETES_VERSION: binaries (cold: about 20-30 minutes)"
k8s_bin=$cache/kubernetes-$KUBERNETES_VERSION/bin
k8s_bins=(kubelet kubeadm kubectl kube-proxy kube-apiserver kube-controller-manager kube-scheduler)
# Another build of the same cache (e.g. `make k8s-tools`) may be running: wait
# for it rather than compiling the same packages twice.
while compgen -G "$k8s_bin/.build.*" >/dev/null && pgrep -f "build -trimpath.*kubernetes/cmd" >/dev/null; do
  say "kubernetes: another build is writing $k8s_bin, waiting"
  sleep 30
done
"$tools/build-k8s.sh" "${k8s_bins[@]}" >&2

# --- component images ---------------------------------------------------------
# The exact names kubeadm will ask for, so the node never pulls.
mapfile -t wanted < <("$k8s_bin/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" 2>/dev/null)
[ ${#wanted[@]} -ge 6 ] || die "kubeadm config images list gave ${#wanted[@]} images: ${wanted[*]}"
image_for() { # image_for NAME: the wanted image whose repository ends in /NAME
  local i
  for i in "${wanted[@]}"; do [[ ${i%:*} == */$1 ]] && { echo "$i"; return; }; done
  die "kubeadm wants no $1 image (wanted: ${wanted[*]})"
}
storage_image=$repo/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION
helper_image=$repo/local-path-helper:$DEBIAN_SUITE-$base_key

work=$(mktemp -d "${TMPDIR:-/tmp}/devctl-node.XXXXXX")
build_container=""
cleanup() {
  [ -z "$build_container" ] || docker rm -f -v "$build_container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A distroless-like static base: CA bundle, passwd/group, /tmp.
static=$work/static
mkdir -p "$static/etc/ssl/certs" "$static/tmp"
tar -xOf "$rootfs" ./etc/ssl/certs/ca-certificates.crt >"$static/etc/ssl/certs/ca-certificates.crt" 2>/dev/null ||
  docker run --rm --entrypoint cat "$base_image" /etc/ssl/certs/ca-certificates.crt >"$static/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$static/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$static/etc/group"
printf 'hosts: files dns\n' >"$static/etc/nsswitch.conf"
chmod 1777 "$static/tmp"

# component_image TAG FROM BINARY DEST [ENTRYPOINT-JSON]
component_image() {
  local tag=$1 from=$2 bin=$3 dest=$4 entrypoint=${5:-}
  local ctx=$work/ctx-${tag//[^a-zA-Z0-9]/_}
  # a cache filled by hand may hold a cgo build, which cannot run FROM scratch
  go version -m "$bin" | grep -q 'CGO_ENABLED=0' ||
    die "$bin is not a static (CGO_ENABLED=0) build: delete it and run again"
  mkdir -p "$ctx"
  cp "$bin" "$ctx/bin"
  {
    echo "FROM $from"
    [ "$from" != scratch ] || { cp -a "$static" "$ctx/static"; echo "COPY static/ /"; }
    echo "COPY bin $dest"
    echo "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    [ -z "$entrypoint" ] || echo "ENTRYPOINT $entrypoint"
  } >"$ctx/Dockerfile"
  dbuild "$tag" "$ctx"
  say "image $tag"
}
say "component images"
component_image "$(image_for kube-apiserver)" scratch "$k8s_bin/kube-apiserver" /usr/local/bin/kube-apiserver
component_image "$(image_for kube-controller-manager)" scratch "$k8s_bin/kube-controller-manager" /usr/local/bin/kube-controller-manager
component_image "$(image_for kube-scheduler)" scratch "$k8s_bin/kube-scheduler" /usr/local/bin/kube-scheduler
# kube-proxy programs iptables: it needs the Debian userland.
component_image "$(image_for kube-proxy)" "$base_image" "$k8s_bin/kube-proxy" /usr/local/bin/kube-proxy
component_image "$(image_for etcd)" scratch "$etcd_dir/etcd" /usr/local/bin/etcd
component_image "$(image_for coredns)" scratch "$coredns" /coredns '["/coredns"]'
component_image "$(image_for pause)" scratch "$pause" /pause '["/pause"]'
component_image "$storage_image" scratch "$local_path" /usr/local/bin/local-path-provisioner
# The storage helper pod runs the provisioner's small setup/teardown shell
# scripts: a static busybox from the Debian root filesystem.
hctx=$work/ctx-helper
mkdir -p "$hctx"
docker run --rm --entrypoint cat "$base_image" /bin/busybox >"$hctx/busybox"
chmod 0755 "$hctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\n' >"$hctx/Dockerfile"
dbuild "$helper_image" "$hctx"
say "image $helper_image"
preload=("${wanted[@]}" "$storage_image" "$helper_image")

# --- node files ------------------------------------------------------------------
kind_dir=$(cd "$root" && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
kind_files=$kind_dir/images/base/files
[ -d "$kind_files" ] || die "kind $KIND_VERSION node files not found under $kind_dir"
stage=$work/stage
mkdir -p "$stage/kind/manifests" "$stage/etc/cni/net.d" "$stage/etc/kubernetes/kubelet.conf.d" "$stage/usr/bin"
cp -r "$kind_files/etc" "$kind_files/kind" "$kind_files/usr" "$stage/"
rm -f "$stage/etc/systemd/system/containerd-fuse-overlayfs.service"
cp "$here/node/devctl-entrypoint" "$stage/usr/local/bin/devctl-entrypoint"
cp "$here/node/10-devctl-bridge.conflist" "$stage/etc/cni/net.d/"
cp "$here/node/99-devctl-cgroupv1.conf" "$stage/etc/kubernetes/kubelet.conf.d/"
cp "$here/node/default-cni.yaml" "$stage/kind/manifests/default-cni.yaml"
# kind's storage manifest, with our provisioner and helper images.
awk '/^const defaultStorageManifest = `/ {on=1; next} on && /^`/ {exit} on {print}' \
  "$kind_dir/pkg/build/nodeimage/const_storage.go" |
  sed -e "s|\` + storageProvisionerImage + \`|$storage_image|" -e "s|\` + storageHelperImage + \`|$helper_image|" \
    >"$stage/kind/manifests/default-storage.yaml"
grep -q "$helper_image" "$stage/kind/manifests/default-storage.yaml" || die "could not read kind's storage manifest"
sed -i "s|sandbox_image = .*|sandbox_image = \"$(image_for pause)\"|" "$stage/etc/containerd/config.toml"
sed -i 's|^KUBELET_EXTRA_ARGS=.*|& --config-dir=/etc/kubernetes/kubelet.conf.d|' "$stage/etc/default/kubelet"
for b in kubelet kubeadm kubectl; do cp "$k8s_bin/$b" "$stage/usr/bin/"; done
cp "$crictl" "$stage/usr/local/bin/crictl"
echo "$KUBERNETES_VERSION" >"$stage/kind/version"
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
chmod 0755 "$stage"/usr/bin/* "$stage"/usr/local/bin/* "$stage"/kind/bin/*

# --- assemble the node in a build container, as kind's node image builder does ---
say "node: assembling in a build container"
build_container=devctl-node-build-$$
docker run -d --name "$build_container" --entrypoint=sleep --security-opt seccomp=unconfined \
  "$base_image" infinity >/dev/null
tar -C "$stage" --owner=0 --group=0 -cf - . | docker cp - "$build_container:/"
docker exec "$build_container" bash -euc '
  # systemd in a container (mirrors kind'"'"'s base image)
  find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
  rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
    /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
    /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
  echo ReadKMsg=no >>/etc/systemd/journald.conf
  ln -sf /usr/lib/systemd/systemd /sbin/init
  # containerd, runc and CNI plugins from Debian, where kind expects them
  ln -sf /usr/bin/containerd /usr/local/bin/containerd
  mkdir -p /opt/cni/bin /etc/kubernetes/manifests
  ln -sf /usr/lib/cni/* /opt/cni/bin/
  ctr oci spec \
    | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" \
    | jq "del(.process.rlimits)" >/etc/containerd/cri-base.json
  systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
  systemctl mask systemd-binfmt.service >/dev/null 2>&1
  sed -i "s/OnBootSec=15min/OnBootSec=1min/" /lib/systemd/system/systemd-tmpfiles-clean.timer || true
  kubelet --version >/dev/null && kubeadm version -o short >/dev/null && crictl --version >/dev/null
'
say "node: preloading ${#preload[@]} images into containerd"
docker exec "$build_container" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
docker exec "$build_container" bash -euc 'for i in $(seq 1 30); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; cat /tmp/containerd.log; exit 1'
docker save "${preload[@]}" | docker exec -i "$build_container" \
  ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >/dev/null
imported=$(docker exec "$build_container" ctr --namespace=k8s.io images list -q)
for i in "${preload[@]}"; do
  grep -qx "$i" <<<"$imported" || grep -qx "docker.io/$i" <<<"$imported" || die "image $i missing from the node's containerd"
done
# Stop containerd so its metadata is flushed before the commit (the build
# container's init is `sleep`, which leaves the exited process as a zombie).
docker exec "$build_container" bash -c 'pkill -x containerd
  for i in $(seq 1 30); do ps -C containerd -o stat= | grep -qv "^Z" || exit 0; sleep 1; done
  echo "containerd did not stop" >&2; exit 1'
docker exec "$build_container" rm -rf /tmp/containerd.log /var/log/apt /var/cache/apt/archives/partial
docker commit "$build_container" "$node_image-rootfs" >/dev/null
# `docker commit --change` cannot set STOPSIGNAL; a layer-less build can.
fctx=$work/ctx-final
mkdir -p "$fctx"
cat >"$fctx/Dockerfile" <<EOF
FROM $node_image-rootfs
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/devctl-entrypoint", "/usr/local/bin/entrypoint", "/sbin/init"]
EOF
dbuild "$node_image" "$fctx"
docker rmi "$node_image-rootfs" >/dev/null
say "built $node_image ($(docker image inspect -f '{{.Size}}' "$node_image" | awk '{printf "%.2f GB", $1/1e9}'))"
echo "$probe_image"
echo "$node_image"
