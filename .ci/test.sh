#!/usr/bin/env bash
# test.sh: what `make test` runs once the tools are installed.
#
#   1. go vet -race, then every package's tests with -race (and without
#      go test's own vet, which go vet -race has just run on the same
#      packages) against a throwaway redis-server (.ci/with-redis.sh), TESTP
#      packages at a time;
#   2. when PKGS is ./... (the default), the Redis packages again against a
#      throwaway 6-node Redis Cluster (.ci/test-cluster.sh).
#
# The two passes run at the same time. The cluster pass mostly waits on
# Redis and the race detector's bookkeeping (a load of about 1 on its own),
# so overlapping it with the single-node pass takes about two minutes off a
# warm run on two cores instead of adding them (README, "Tests"). Its output
# goes to a file and is printed, with its own header, when the first pass
# ends, so the two passes' lines never interleave. Exit status: non-zero when
# either pass fails.
#
# Before the passes start, every package is compiled once, race-instrumented,
# by `go vet -race` (which vets what the tests run and leaves the compiled
# packages in the build cache), and kumod once plain (`go build`: the local
# AWS runs kumo in that child, out of the race detector's reach;
# internal/localaws/kumo_race.go). The binaries the tests build and run
# (ferry, devstack) are built with -race from the same compiled packages
# (internal/devproc.Build), so nothing is compiled twice. The Go build cache
# does not share a compile that is still running: on empty caches, two
# passes starting at once would each compile the same race dependencies, and
# several test binaries starting `go build` at once would each compile the
# same packages (on two cores that outlasted go test's 10-minute timeout).
# On a warm cache this step takes seconds.
#
# Environment (set by the Makefile): GO, PKGS, TESTP, TESTFLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
PKGS=${PKGS:-./...}
TESTP=${TESTP:-4}
TESTFLAGS=${TESTFLAGS:-}

# shellcheck disable=SC2086 # PKGS is a word list
$GO vet -race $PKGS
if [[ "$PKGS" == "./..." ]]; then
	$GO build -o /dev/null ./internal/localaws/kumod
fi

cluster_pid=""
cluster_log=""
if [[ "$PKGS" == "./..." ]]; then
	cluster_log=$(mktemp "${TMPDIR:-/tmp}/ferry-test-cluster.XXXXXX")
	# shellcheck disable=SC2086 # TESTFLAGS is a list of go test flags
	GO=$GO TESTVET=-vet=off .ci/test-cluster.sh $TESTFLAGS >"$cluster_log" 2>&1 &
	cluster_pid=$!
	trap 'kill "$cluster_pid" 2>/dev/null || true; rm -f "$cluster_log"' EXIT
	echo "test: the Redis Cluster pass runs in the background; its output follows the single-node pass"
fi

single=0
# shellcheck disable=SC2086 # PKGS and TESTFLAGS are word lists
.ci/with-redis.sh bash -c "$GO test -race -vet=off -count=1 -p $TESTP $TESTFLAGS $PKGS" || single=$?

cluster=0
if [[ -n "$cluster_pid" ]]; then
	wait "$cluster_pid" || cluster=$?
	echo
	echo "== Redis Cluster pass (.ci/test-cluster.sh) =="
	cat "$cluster_log"
	[[ $cluster -eq 0 ]] && echo "test: Redis Cluster pass: ok" || echo "test: Redis Cluster pass FAILED (exit $cluster)"
fi
[[ $single -eq 0 ]] || echo "test: single-node pass FAILED (exit $single)"
[[ $single -eq 0 && $cluster -eq 0 ]]
