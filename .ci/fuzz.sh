#!/usr/bin/env bash
# fuzz.sh [FUZZTIME]
#
# Runs every Fuzz* target of the module for FUZZTIME each (default 20s) on
# top of its committed seed corpus (testdata/fuzz/), one at a time: the
# coverage-guided fuzzer uses every core it gets. A crash fails the run and
# go test writes the failing input under testdata/fuzz/ for a regression
# seed. `go test` without -fuzz already runs the seeds of every target.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-${FUZZTIME:-20s}}
status=0
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for target in $targets; do
		echo "fuzz: $pkg $target for $fuzztime"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/ferry-fuzz.log 2>&1; then
			cat /tmp/ferry-fuzz.log
			status=1
		fi
	done
done
exit "$status"
