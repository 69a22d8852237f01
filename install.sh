#!/usr/bin/env bash
# install.sh — make this machine ready for devctl, idempotently:
#   1. a Docker engine that answers (installs Debian's docker.io and starts
#      dockerd when none does),
#   2. devctl built from this checkout and installed to $PREFIX/bin,
#   3. a kind node image: kind's default when it can be pulled, otherwise
#      (air-gapped machines, or --offline-images) built locally from source
#      with the same builder the tests use, cached afterwards,
#   4. shell completion.
# Run it again at any time: finished steps take seconds.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: ./install.sh [--prefix DIR] [--offline-images] [--skip-images] [--no-docker]

  --prefix DIR       install devctl to DIR/bin (default /usr/local, or ~/.local when not root)
  --offline-images   build the kind node image locally instead of pulling it
  --skip-images      do not pull or build a node image
  --no-docker        do not install or start a Docker engine
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
prefix=""
offline=no
images=yes
docker_setup=yes
while [ $# -gt 0 ]; do
  case "$1" in
  --prefix) prefix=$2; shift 2 ;;
  --offline-images) offline=yes; shift ;;
  --skip-images) images=no; shift ;;
  --no-docker) docker_setup=no; shift ;;
  -h | --help) usage; exit 0 ;;
  *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
root=no
[ "$(id -u)" = 0 ] && root=yes
if [ -z "$prefix" ]; then
  if [ $root = yes ]; then prefix=/usr/local; else prefix=$HOME/.local; fi
fi
start=$(date +%s)
step() { printf '\n==> %s\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - start ))s"; }
die() { echo "install.sh: $*" >&2; exit 1; }
sudo_() { if [ $root = yes ]; then "$@"; else sudo "$@"; fi; }

step "Go toolchain"
command -v go >/dev/null || die "Go is not installed: install Go $(sed -n 's/^go //p' "$here/go.mod") or newer from your package manager"
echo "$(go version)"

if [ $docker_setup = yes ]; then
  step "Docker engine"
  if docker info >/dev/null 2>&1; then
    echo "the Docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  else
    if ! command -v dockerd >/dev/null; then
      command -v apt-get >/dev/null || die "no Docker engine and no apt-get: install Docker for your system, start it, and run ./install.sh again"
      echo "installing Debian's docker.io ..."
      sudo_ apt-get update -qq
      sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    fi
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      sudo_ systemctl start docker
    else
      echo "starting dockerd in the background (log: /var/log/dockerd.log)"
      sudo_ sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
    fi
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || die "dockerd did not start: see /var/log/dockerd.log (or journalctl -u docker)"
    echo "the Docker engine answers"
  fi
  # Hosts whose bounding set lacks CAP_SYS_RESOURCE cannot run
  # `docker run --privileged`, which kind needs. A small shim first on PATH
  # maps --privileged to every other capability; it is a no-op elsewhere.
  capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status 2>/dev/null || echo "")
  if [ -n "$capbnd" ] && ! (( (16#$capbnd >> 24) & 1 )); then
    if [ $root = yes ]; then
      install -m 0755 "$here/e2e/tools/docker-wrapper/docker" /usr/local/sbin/docker
      echo "this host cannot start privileged containers (no CAP_SYS_RESOURCE): installed a docker shim at /usr/local/sbin/docker that kind uses instead"
    else
      echo "warning: this host cannot start privileged containers (no CAP_SYS_RESOURCE); run install.sh as root to install the docker shim kind needs here" >&2
    fi
  fi
fi

step "devctl"
make -C "$here" --no-print-directory build >/dev/null
mkdir -p "$prefix/bin"
# devctl is the lean front (it checks plain manifests itself); devctl-core,
# beside it, is the full build it runs for every other command.
install -m 0755 "$here/bin/devctl-core" "$prefix/bin/devctl-core"
install -m 0755 "$here/bin/devctl" "$prefix/bin/devctl"
# The platform stand-ins' static binary: devctl runs it in a FROM scratch image.
install -m 0755 "$here/bin/devctl-mocks" "$prefix/bin/devctl-mocks"
echo "installed $prefix/bin/devctl ($("$prefix/bin/devctl" version))"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: add $prefix/bin to your PATH" ;; esac

if [ $images = yes ]; then
  step "kind node image"
  confdir=${XDG_CONFIG_HOME:-$HOME/.config}/devctl
  mkdir -p "$confdir"
  default=$(cd "$here" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind >/dev/null 2>&1 && grep -ho 'kindest/node:[^"]*' "$(cd "$here" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)/pkg/apis/config/defaults/image.go" | head -n 1 || true)
  image=""
  if [ $offline = no ] && [ -n "$default" ]; then
    if docker image inspect "$default" >/dev/null 2>&1 || timeout 60 docker pull -q "$default" >/dev/null 2>&1; then
      image=$default
      echo "using $image"
    else
      echo "cannot pull $default (no registry access?): building a node image locally instead"
    fi
  fi
  if [ -z "$image" ]; then
    if ! command -v debootstrap >/dev/null; then
      command -v apt-get >/dev/null || die "building the node image needs debootstrap: install it (it makes the node's Debian root filesystem) and run ./install.sh again"
      echo "installing Debian's debootstrap (the node image's root filesystem is made with it) ..."
      sudo_ apt-get update -qq
      sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    echo "building the kind node image from source: $("$here/e2e/images/estimate.sh")"
    image=$("$here/e2e/images/build.sh" | tail -n 1)
  fi
  echo "$image" >"$confdir/node-image"
  echo "devctl will use node image $image (recorded in $confdir/node-image; DEVCTL_NODE_IMAGE overrides it)"
fi

step "shell completion"
if [ $root = yes ] && [ -d /etc/bash_completion.d ]; then
  "$prefix/bin/devctl" completion bash >/etc/bash_completion.d/devctl
  echo "bash completion installed in /etc/bash_completion.d/devctl"
else
  echo "for bash: source <(devctl completion bash)   (also zsh, fish, powershell)"
fi

step "ready in $(elapsed)"
echo "next: cd examples/hello && devctl up"
