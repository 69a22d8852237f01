#!/usr/bin/env bash
# estimate.sh prints how long building the kind node image will take, from
# what is already cached: the image itself, or the Kubernetes binaries (most
# of the build), under ${DEVCTL_E2E_CACHE:-~/.cache/devctl-e2e}.
# install.sh prints it before it builds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${DEVCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devctl-e2e}
k8s=$(sed -n 's/^KUBERNETES_VERSION=//p' "$root/e2e/tools/versions.env")
if docker image inspect "$("$here/build.sh" --print-image)" >/dev/null 2>&1; then
  echo "already built, seconds"
elif [ -d "$cache/kubernetes-$k8s/bin" ]; then
  echo "the Kubernetes binaries are cached: about 5 minutes"
else
  echo "nothing cached yet: about 15-25 minutes on 2 cores (cached afterwards)"
fi
