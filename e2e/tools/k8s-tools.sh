#!/usr/bin/env bash
# Builds the fast test control plane used by internal/k8stest (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok)
# from the Go module proxy into the cache, once per version, and assembles
# them into one assets directory. The last line printed is that directory;
# point DEVCTL_K8S_ASSETS at it to use a different cache.
#   e2e/tools/k8s-tools.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
cache=${DEVCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devctl-e2e}
export CGO_ENABLED=0
mkdir -p "$cache"
exec 8>"$cache/.k8s-tools.lock"
if ! flock -n 8; then
  echo "k8s-tools: waiting for another run to finish"
  flock 8
fi

# stamp DIR FILE...: a digest of the tool module, so editing go.mod/go.sum
# rebuilds even when the version in versions.env did not change.
stamp() {
  local dir=$1; shift
  (cd "$dir" && cat "$@" | sha256sum | cut -d' ' -f1)
}

# check_pin DIR MODULE WANT: the tool module must require the pinned version.
check_pin() {
  local got
  got=$(go -C "$1" list -m -f '{{.Version}}' "$2")
  if [ "$got" != "$3" ]; then
    echo "$1/go.mod requires $2 $got but versions.env pins $3: run 'go -C $1 get $2@$3 && go -C $1 mod tidy'" >&2
    exit 1
  fi
}

# etcd: etcd's own main package, built from e2e/tools/etcd.
etcd_out="$cache/etcd-$ETCD_VERSION"
etcd_stamp=$(stamp "$here/etcd" go.mod go.sum main.go)
if [ -x "$etcd_out/etcd" ] && [ "$(cat "$etcd_out/.stamp" 2>/dev/null)" = "$etcd_stamp" ]; then
  echo "etcd $ETCD_VERSION: cached in $etcd_out"
else
  check_pin "$here/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  echo "etcd $ETCD_VERSION: building (cold: about 2-4 minutes)"
  start=$(date +%s)
  mkdir -p "$etcd_out"
  go -C "$here/etcd" build -trimpath -buildvcs=false -ldflags "-s -w" -o "$etcd_out/etcd.tmp" .
  mv "$etcd_out/etcd.tmp" "$etcd_out/etcd"
  echo "$etcd_stamp" >"$etcd_out/.stamp"
  echo "etcd $ETCD_VERSION: built in $(( $(date +%s) - start ))s -> $etcd_out"
fi

# kwok: the binary plus its stage configuration, assembled from the stage
# files shipped in the kwok module (node initialise + lease heartbeat, fast
# pod lifecycle), the same set kwokctl uses by default.
kwok_out="$cache/kwok-$KWOK_VERSION"
kwok_stamp=$(stamp "$here/kwok" go.mod go.sum tools.go)
if [ -x "$kwok_out/kwok" ] && [ -s "$kwok_out/stages.yaml" ] && [ "$(cat "$kwok_out/.stamp" 2>/dev/null)" = "$kwok_stamp" ]; then
  echo "kwok $KWOK_VERSION: cached in $kwok_out"
else
  check_pin "$here/kwok" sigs.k8s.io/kwok "$KWOK_VERSION"
  echo "kwok $KWOK_VERSION: building (cold: about 2-4 minutes)"
  start=$(date +%s)
  mkdir -p "$kwok_out"
  go -C "$here/kwok" build -trimpath -buildvcs=false -ldflags "-s -w" -o "$kwok_out/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok
  moddir=$(go -C "$here/kwok" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  # stage_files DIR: the YAML files a kustomization lists, depth first.
  stage_files() {
    local r
    for r in $(sed -n 's/^- //p' "$1/kustomization.yaml"); do
      if [ -d "$1/$r" ]; then stage_files "$1/$r"; else echo "$1/$r"; fi
    done
  }
  {
    echo "# Assembled by e2e/tools/k8s-tools.sh from sigs.k8s.io/kwok@$KWOK_VERSION kustomize/stage/fast."
    for f in $(stage_files "$moddir/kustomize/stage/fast"); do
      echo "---"
      cat "$f"
    done
  } >"$kwok_out/stages.yaml.tmp"
  grep -q 'kind: Node' "$kwok_out/stages.yaml.tmp" && grep -q 'kind: Pod' "$kwok_out/stages.yaml.tmp" || {
    echo "kwok $KWOK_VERSION: no node or pod stages found under $moddir/kustomize/stage/fast" >&2
    exit 1
  }
  mv "$kwok_out/stages.yaml.tmp" "$kwok_out/stages.yaml"
  mv "$kwok_out/kwok.tmp" "$kwok_out/kwok"
  echo "$kwok_stamp" >"$kwok_out/.stamp"
  echo "kwok $KWOK_VERSION: built in $(( $(date +%s) - start ))s -> $kwok_out"
fi

# Kubernetes: the control plane and kubectl (build-k8s.sh caches per version).
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
"$here/build-k8s.sh" "${k8s_bins[@]}"
k8s_out="$cache/kubernetes-$KUBERNETES_VERSION/bin"

# One directory holding everything, named by every version it contains;
# internal/k8stest computes the same name from versions.env.
assets="$cache/k8stest-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
mkdir -p "$assets"
ln -sfn "$etcd_out/etcd" "$assets/etcd"
ln -sfn "$kwok_out/kwok" "$assets/kwok"
ln -sfn "$kwok_out/stages.yaml" "$assets/kwok-stages.yaml"
for b in "${k8s_bins[@]}"; do ln -sfn "$k8s_out/$b" "$assets/$b"; done
echo "control plane assets ready (DEVCTL_K8S_ASSETS):"
echo "$assets"
