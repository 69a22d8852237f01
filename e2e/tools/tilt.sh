#!/usr/bin/env bash
# Builds Tilt from the Go module proxy into the cache, once per version, for
# the side-by-side inner-loop benchmark (e2e/bench/innerloop -tilt). Tilt is
# never added to devctl's go.mod: it is built in a scratch module that
# requires github.com/tilt-dev/tilt with a tools.go import of its main
# package and Tilt's own two replace directives. The last line printed is the
# binary's path. A cold build takes several minutes on a busy 2-core machine.
#   e2e/tools/tilt.sh            build (or reuse) and print the path
#   e2e/tools/tilt.sh --print    print the path without building
# TILT_VERSION overrides the pinned version.
set -euo pipefail
version=${TILT_VERSION:-v0.37.6}
cache=${DEVCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devctl-e2e}
out="$cache/tilt-$version"
bin="$out/tilt"
if [ "${1:-}" = --print ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
exec 8>"$cache/.tilt.lock"
if ! flock -n 8; then
  echo "tilt: waiting for another build to finish" >&2
  flock 8
fi
if [ -x "$bin" ]; then
  echo "tilt $version: cached in $out" >&2
  echo "$bin"
  exit 0
fi

mod="$out/mod"
mkdir -p "$mod"
cat >"$mod/go.mod" <<GOMOD
module devctl.local/tiltbuild

go 1.24

require github.com/tilt-dev/tilt $version

replace (
	github.com/emicklei/go-restful/v3 => github.com/emicklei/go-restful/v3 v3.9.0
	github.com/pkg/browser => github.com/tilt-dev/browser v0.0.1
)
GOMOD
cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/tilt-dev/tilt/cmd/tilt"
GO
echo "tilt $version: building from the module proxy (cold: 3-10 minutes)" >&2
start=$(date +%s)
# go-tree-sitter (a Tilt dependency) needs cgo.
export GONOSUMDB=github.com/tilt-dev GOFLAGS=-mod=mod CGO_ENABLED=1
(cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true)
(cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp" github.com/tilt-dev/tilt/cmd/tilt)
mv "$bin.tmp" "$bin"
echo "tilt $version: built in $(($(date +%s) - start))s -> $bin" >&2
echo "$bin"
