#!/usr/bin/env bash
# Compare `devctl check` with `conftest test` running the devctl baseline
# written in Rego (internal/policy/testdata/rego) on the same input: 10,000
# workloads (the input of BenchmarkCheckWorkloads), then one small file
# (internal/policy/testdata/rendered.yaml, where process start-up dominates).
# For each it prints the mean wall time, the peak memory (maximum RSS) and
# the devctl/conftest ratios.
#
#   e2e/tools/bench-conftest.sh path/to/devctl [runs-on-one-file] [runs-on-10000]
#
# DEVCTL_CHECK_ARGS (default "check") is how devctl is asked to check a file.
# MANIFESTS=path checks that file instead of the generated 10,000 workloads.
#
# conftest is built from the Go module proxy in a temporary module, never
# added to devctl's go.mod. Set CONFTEST_VERSION to pin another release, or
# CONFTEST to use a conftest binary you already have. Runs of the two tools
# alternate, so that a busy machine slows both alike.
set -euo pipefail

devctl=${1:?usage: bench-conftest.sh path/to/devctl [runs-on-one-file] [runs-on-10000]}
small_runs=${2:-20}
big_runs=${3:-3}
version=${CONFTEST_VERSION:-latest}
here=$(cd "$(dirname "$0")/../.." && pwd)
policy_dir="$here/internal/policy/testdata/rego"
small="$here/internal/policy/testdata/rendered.yaml"
timer=/usr/bin/time # GNU time, for the maximum RSS
[ -x "$timer" ] || {
	echo "bench-conftest.sh needs GNU time at $timer (apt-get install time)" >&2
	exit 1
}

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

big=${MANIFESTS:-}
if [ -z "$big" ]; then
	big="$work/workloads.yaml"
	echo "writing 10,000 workloads with BenchmarkCheckWorkloads (its in-process figures follow) ..." >&2
	(cd "$here" && DEVCTL_BENCH_WRITE="$big" go test -run '^$' -bench 'BenchmarkCheckWorkloads$' -benchtime 1x ./internal/policy | grep Benchmark >&2)
fi

# check_once NAME CMD... : runs CMD once and prints its verdict, so a broken
# binary or flag shows up instead of being timed as a fast failure. Exit 0 is a
# pass, 1 a policy failure; anything else stops the benchmark.
check_once() {
	local name=$1 rc=0
	shift
	"$@" >"$work/$name.out" 2>&1 || rc=$?
	case $rc in
	0) echo "  $name: pass" ;;
	1) echo "  $name: fail (violations found)" ;;
	*)
		echo "$name exited $rc running: $*" >&2
		tail -20 "$work/$name.out" >&2
		exit 1
		;;
	esac
}

# run_once OUT CMD... : runs CMD and appends "wall_ms max_rss_kb" to OUT.
run_once() {
	local out=$1 start end
	shift
	start=$(date +%s%N)
	"$timer" -f %M -o "$work/rss" "$@" >/dev/null 2>&1 || true # both exit 1 on violations
	end=$(date +%s%N)
	echo "$(((end - start) / 1000000)) $(tail -1 "$work/rss")" >>"$out"
}

# compare LABEL FILE RUNS: one untimed warm-up of each (page cache), then
# RUNS alternating runs; prints mean wall time, peak RSS and the ratios.
compare() {
	local label=$1 file=$2 runs=$3
	# DEVCTL_CHECK_ARGS: how the devctl binary is told to check a file.
	# shellcheck disable=SC2206
	local devctl_cmd=("$devctl" ${DEVCTL_CHECK_ARGS:-check} "$file")
	local conftest_cmd=("$conftest" test --policy "$policy_dir" --namespace main "$file")
	echo "$label ($(du -h "$file" | cut -f1)):"
	check_once conftest "${conftest_cmd[@]}"
	check_once devctl "${devctl_cmd[@]}"
	: >"$work/c.times"
	: >"$work/d.times"
	for _ in $(seq "$runs"); do
		run_once "$work/c.times" "${conftest_cmd[@]}"
		run_once "$work/d.times" "${devctl_cmd[@]}"
	done
	awk -v runs="$runs" '
		FNR == 1 { f++ }
		{ ms[f] += $1; if ($2 > rss[f]) rss[f] = $2 }
		END {
			printf "  conftest test: %8.1f ms/run  %7.1f MiB peak\n", ms[1] / runs, rss[1] / 1024
			printf "  devctl check:  %8.1f ms/run  %7.1f MiB peak\n", ms[2] / runs, rss[2] / 1024
			printf "  ratio devctl/conftest: time %.2fx, memory %.2fx (%d runs each)\n", ms[2] / ms[1], rss[2] / rss[1], runs
		}' "$work/c.times" "$work/d.times"
}

compare "10,000 workloads" "$big" "$big_runs"
compare "one file" "$small" "$small_runs"
