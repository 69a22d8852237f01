#!/usr/bin/env bash
# Builds the Kubernetes binaries the test clusters use from the Go module
# proxy (no prebuilt download) into the cache, once per version.
#   e2e/tools/build-k8s.sh [binary...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
cache=${DEVCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devctl-e2e}
out="$cache/kubernetes-$KUBERNETES_VERSION/bin"
mkdir -p "$out"
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kubeadm kube-proxy)
# One build per version at a time: a second run waits, then finds the cache.
exec 9>"$out/.lock"
if ! flock -n 9; then
  echo "kubernetes $KUBERNETES_VERSION: waiting for another build into $out"
  flock 9
fi
todo=()
for b in "${bins[@]}"; do
  [ -x "$out/$b" ] || todo+=("$b")
done
if [ ${#todo[@]} -eq 0 ]; then
  echo "kubernetes $KUBERNETES_VERSION: cached in $out"
  exit 0
fi
minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
pkgs=()
for b in "${todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
echo "kubernetes $KUBERNETES_VERSION: building ${todo[*]} (cold: about 15-25 minutes on 2 cores; cached afterwards)"
start=$(date +%s)
tmp=$(mktemp -d "$out/.build.XXXXXX")
(cd "$here/k8s" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
mv "$tmp"/* "$out/"
rmdir "$tmp"
echo "kubernetes $KUBERNETES_VERSION: built in $(( $(date +%s) - start ))s -> $out"
