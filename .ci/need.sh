#!/usr/bin/env bash
# need.sh [--warn] [--hint TEXT] WHO BIN:PACKAGE...
#
# Makes sure every command BIN is on PATH. The missing ones are installed
# from their Debian PACKAGEs, with one apt-get update for all, when this runs
# as root where apt-get exists. Otherwise they are named with the packages
# that provide them (and TEXT, when given), and need.sh fails; with --warn
# it only warns, for callers that go on without them. WHO starts every line
# it writes (to stderr).
set -euo pipefail

warn=false
hint=""
while [[ $# -gt 0 ]]; do
	case $1 in
	--warn) warn=true ;;
	--hint) hint="; ${2:?--hint needs a text}" && shift ;;
	*) break ;;
	esac
	shift
done
if [[ $# -lt 2 ]]; then
	echo "usage: $0 [--warn] [--hint TEXT] WHO BIN:PACKAGE..." >&2
	exit 2
fi
who=$1
shift

bins=()
pkgs=()
for pair in "$@"; do
	command -v "${pair%%:*}" >/dev/null 2>&1 && continue
	bins+=("${pair%%:*}")
	pkgs+=("${pair##*:}")
done
[[ ${#pkgs[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "$who: installing ${pkgs[*]} from Debian's packages" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
	exit 0
fi
echo "$who: ${bins[*]} not installed (Debian: apt-get install ${pkgs[*]})$hint" >&2
$warn
