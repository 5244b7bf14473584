#!/usr/bin/env bash
# with-redis.sh CMD [ARGS...]
#
# Runs CMD with FERRY_REDIS_URL pointing at a Redis. When FERRY_REDIS_URL is
# already set it is used as is. Otherwise a throwaway redis-server (installed
# from Debian's packages when missing) is started on a free loopback port,
# with no persistence, and stopped when CMD ends, whatever its outcome. The
# exit status is CMD's.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

if [[ -n "${FERRY_REDIS_URL:-}" ]]; then
	exec "$@"
fi

log() { echo "with-redis: $*" >&2; }

"$(dirname "$0")/need.sh" --hint "or set FERRY_REDIS_URL" with-redis redis-server:redis-server
# shellcheck source=.ci/redis-node.sh
. "$(dirname "$0")/redis-node.sh"

workdir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-redis.XXXXXX")
NODE_PID=""

cleanup() {
	if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
		kill "$NODE_PID" 2>/dev/null || true
		wait "$NODE_PID" 2>/dev/null || true
	fi
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ports from a random base, until one is ours.
start_redis() {
	local base=$((20000 + RANDOM % 30000)) p i
	for i in $(seq 0 49); do
		p=$((base + i))
		port_in_use "$p" && continue
		if start_node "$p" "$workdir"; then
			REDIS_PORT=$p
			return 0
		fi
	done
	log "could not start redis-server on any port (log: $(tail -n 5 "$workdir/redis.log" 2>/dev/null))"
	return 1
}

start_redis
export FERRY_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
log "throwaway redis-server (pid $NODE_PID) at $FERRY_REDIS_URL"

set +e
"$@"
status=$?
set -e
exit "$status"
