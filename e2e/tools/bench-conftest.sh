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

# check_once NAME CMD... : runs CMD once and prints its verdict, so a broken
# binary or flag shows up instead of being timed as a fast failure. Exit 0 is a
# pass, 1 a policy failure; anything else stops the benchmark.
check_once() {
	local name=$1 rc=0
	shift
	"$@" >"$work/$name.out" 2>&1 || rc=$?
	case $rc in
	0) echo "$name: pass" ;;
	1) echo "$name: fail (violations found)" ;;
	*)
		echo "$name exited $rc running: $*" >&2
		cat "$work/$name.out" >&2
		exit 1
		;;
	esac
}

# time_runs CMD... : prints the mean wall time of one run in milliseconds,
# after one untimed warm-up run (page cache).
time_runs() {
	local start end
	"$@" >/dev/null 2>&1 || true
	start=$(date +%s%N)
	for _ in $(seq "$runs"); do
		"$@" >/dev/null 2>&1 || true # both exit 1 when they find violations
	done
	end=$(date +%s%N)
	awk -v ns=$((end - start)) -v n="$runs" 'BEGIN { printf "%.1f", ns / n / 1e6 }'
}

# DEVCTL_CHECK_ARGS: how the devctl binary is told to check a file.
# shellcheck disable=SC2206
devctl_cmd=("$devctl" ${DEVCTL_CHECK_ARGS:-check} "$manifests")
conftest_cmd=("$conftest" test --policy "$policy_dir" --namespace main "$manifests")

check_once conftest "${conftest_cmd[@]}"
check_once devctl "${devctl_cmd[@]}"
ct=$(time_runs "${conftest_cmd[@]}")
dc=$(time_runs "${devctl_cmd[@]}")
echo "conftest test:  ${ct} ms/run (baseline.rego, $runs runs)"
echo "devctl check:   ${dc} ms/run ($runs runs)"
awk -v d="$dc" -v c="$ct" 'BEGIN { if (c > 0) printf "ratio devctl/conftest: %.2fx\n", d / c }'
