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

if ! command -v redis-server >/dev/null 2>&1; then
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		log "redis-server is not installed; install it (Debian: apt-get install redis-server) or set FERRY_REDIS_URL"
		exit 1
	fi
	log "installing redis-server from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends redis-server >&2
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-redis.XXXXXX")
redis_pid=""

cleanup() {
	if [[ -n "$redis_pid" ]] && kill -0 "$redis_pid" 2>/dev/null; then
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
	fi
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() {
	# Connecting succeeds only when something listens.
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# redis-server refuses --port 0, so try ports from a random base. The server
# runs in the background of this shell (not daemonized) so that its PID is
# known for certain and INFO can prove the answering server is ours.
start_redis() {
	local base=$((20000 + RANDOM % 30000)) p i
	for i in $(seq 0 49); do
		p=$((base + i))
		port_in_use "$p" && continue
		redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
			--dir "$workdir" --logfile "$workdir/redis.log" >/dev/null 2>&1 &
		redis_pid=$!
		for _ in $(seq 1 100); do
			if ! kill -0 "$redis_pid" 2>/dev/null; then
				break # lost the port to someone else; try the next
			fi
			if redis-cli -p "$p" INFO server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$redis_pid"; then
				REDIS_PORT=$p
				return 0
			fi
			sleep 0.05
		done
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
		redis_pid=""
	done
	log "could not start redis-server on any port (log: $(tail -n 5 "$workdir/redis.log" 2>/dev/null))"
	return 1
}

start_redis
export FERRY_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
log "throwaway redis-server (pid $redis_pid) at $FERRY_REDIS_URL"

set +e
"$@"
status=$?
set -e
exit "$status"
