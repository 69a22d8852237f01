#!/usr/bin/env bash
# Compare the wall time of `conftest test` with the devctl baseline Rego
# against `devctl check` on the same manifests.
#
#   e2e/tools/bench-conftest.sh path/to/devctl manifests.yaml [runs]
#
# DEVCTL_CHECK_ARGS (default "check") is how devctl is asked to check a file.
#
# conftest is built from the Go module proxy in a temporary module, never
# added to devctl's go.mod. Set CONFTEST_VERSION to pin another release, or
# CONFTEST to use a conftest binary you already have.
set -euo pipefail

devctl=${1:?usage: bench-conftest.sh path/to/devctl manifests.yaml [runs]}
manifests=${2:?usage: bench-conftest.sh path/to/devctl manifests.yaml [runs]}
runs=${3:-20}
version=${CONFTEST_VERSION:-latest}
here=$(cd "$(dirname "$0")/../.." && pwd)
policy_dir="$here/internal/policy/testdata/rego"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

conftest=${CONFTEST:-} # a conftest binary built earlier; built here when unset
if [ -z "$conftest" ]; then
	echo "building conftest@$version in $work ..." >&2
	(
		cd "$work"
		go mod init bench-conftest >/dev/null 2>&1
		GOFLAGS=-mod=mod GOBIN="$work/bin" go install "github.com/open-policy-agent/conftest@$version"
	)
	conftest="$work/bin/conftest"
fi

# time_runs CMD... : prints the mean wall time of one run in milliseconds.
time_runs() {
	local start end
	start=$(date +%s%N)
	for _ in $(seq "$runs"); do
		"$@" >/dev/null 2>&1 || true # both exit non-zero when they find violations
	done
	end=$(date +%s%N)
	echo $(( (end - start) / runs / 1000000 ))
}

ct=$(time_runs "$conftest" test --policy "$policy_dir" --namespace main "$manifests")
# DEVCTL_CHECK_ARGS: how the devctl binary is told to check a file.
# shellcheck disable=SC2086
dc=$(time_runs "$devctl" ${DEVCTL_CHECK_ARGS:-check} "$manifests")
echo "conftest test:  ${ct} ms/run (baseline.rego, $runs runs)"
echo "devctl check:   ${dc} ms/run ($runs runs)"
if [ "$dc" -gt 0 ]; then
	awk -v a="$ct" -v b="$dc" 'BEGIN { printf "ratio conftest/devctl: %.2fx\n", a / b }'
fi
