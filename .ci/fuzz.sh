#!/usr/bin/env bash
# fuzz.sh [FUZZTIME]
#
# Runs every Fuzz* target of the module for FUZZTIME each (default 20s) on
# top of its committed seed corpus (testdata/fuzz/), one at a time: the
# coverage-guided fuzzer uses every core it gets. `make fuzz` and .ci/run
# (after `make test`) call it. A crash fails the run and
# go test writes the failing input under testdata/fuzz/ for a regression
# seed. `go test` without -fuzz already runs the seeds of every target.
#
# Go 1.26's fuzz coordinator can end a duration-bounded run with a bare
# "context deadline exceeded" failure when the budget expires while a
# worker is mid-input (golang/go#75804, fixed in Go 1.27). That failure
# writes no input. So a failed run counts as a finding when it wrote a
# failing input or failed in any other way, and as that toolchain race
# (reported, not failed) only when the sole failure is that message and no
# input was written. A count budget (FUZZTIME=200000x) avoids the race.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-${FUZZTIME:-20s}}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Targets are found in the test sources rather than with `go test -list`,
# which would compile every package's test binary just to list them.
while read -r pkg dir; do
	targets=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' "$dir"/*_test.go 2>/dev/null || true)
	[[ -n "$targets" ]] || continue
	for target in $targets; do
		echo "fuzz: $pkg $target for $fuzztime"
		corpus="$dir/testdata/fuzz/$target"
		before=$(ls "$corpus" 2>/dev/null | sort || true)
		if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" </dev/null >"$log" 2>&1; then
			continue
		fi
		after=$(ls "$corpus" 2>/dev/null | sort || true)
		if [[ "$before" == "$after" ]] && ! grep -q 'Failing input written' "$log" &&
			[[ $(grep -c -- '--- FAIL' "$log") -eq 1 ]] &&
			grep -A1 -- "--- FAIL: $target " "$log" | tail -1 | grep -qx '[[:space:]]*context deadline exceeded'; then
			echo "fuzz: $target: the time budget ended in Go's fuzz coordinator race (golang/go#75804): no failing input, not a finding"
			continue
		fi
		cat "$log"
		status=1
	done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
exit "$status"
