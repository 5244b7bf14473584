#!/usr/bin/env bash
# with-redis-cluster.sh CMD [ARGS...]
#
# Runs CMD against a throwaway Redis Cluster: six redis-server processes on
# free loopback ports (3 masters, 3 replicas, made with `redis-cli --cluster
# create --cluster-replicas 1`), no persistence, stopped when CMD ends
# whatever its outcome. CMD sees FERRY_REDIS_MODE=cluster and FERRY_REDIS_URL
# in go-redis's cluster form (redis://seed1?addr=seed2&addr=…, every node a
# seed). redis-server and redis-cli are installed from Debian's packages
# when missing. The exit status is CMD's.
#
# REDIS_CLUSTER_NODE_TIMEOUT (ms, default 2000) is cluster-node-timeout: how
# long a master must be unreachable before its replica is promoted.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

log() { echo "with-redis-cluster: $*" >&2; }

"$(dirname "$0")/need.sh" with-redis-cluster redis-server:redis-server redis-cli:redis-tools
# shellcheck source=.ci/redis-node.sh
. "$(dirname "$0")/redis-node.sh"

node_timeout=${REDIS_CLUSTER_NODE_TIMEOUT:-2000}
workdir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-redis-cluster.XXXXXX")
pids=()
ports=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_cluster_node PORT: starts one cluster node (files in its own
# folder) and records its PID and port.
start_cluster_node() {
	mkdir -p "$workdir/$1"
	start_node "$1" "$workdir/$1" --cluster-enabled yes --cluster-config-file nodes.conf \
		--cluster-node-timeout "$node_timeout" || return 1
	pids+=("$NODE_PID")
	ports+=("$1")
}

# Six nodes on ports from a random base; the cluster bus uses port+10000,
# which must be free too.
base=$((20000 + RANDOM % 25000))
p=$base
while [[ ${#ports[@]} -lt 6 ]]; do
	if [[ $p -ge $((base + 300)) ]]; then
		log "could not find six free ports from $base"
		exit 1
	fi
	if ! port_in_use "$p" && ! port_in_use $((p + 10000)); then
		start_cluster_node "$p" || true
	fi
	p=$((p + 1))
done

addrs=()
for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$workdir/create.log" 2>&1; then
	log "redis-cli --cluster create failed:"
	tail -n 20 "$workdir/create.log" >&2
	exit 1
fi

# Ready when every node sees all slots served and every replica is in sync
# with its master (a failover before that would lose data).
ready() {
	local p info
	for p in "${ports[@]}"; do
		redis-cli -p "$p" CLUSTER INFO 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
		info=$(redis-cli -p "$p" INFO replication 2>/dev/null | tr -d '\r')
		if grep -qx 'role:slave' <<<"$info"; then
			grep -qx 'master_link_status:up' <<<"$info" || return 1
		fi
	done
}
for i in $(seq 1 600); do
	ready && break
	if [[ $i -eq 600 ]]; then
		log "the cluster did not become ready within 60s"
		exit 1
	fi
	sleep 0.1
done

url="redis://${addrs[0]}"
sep='?'
for a in "${addrs[@]:1}"; do
	url+="${sep}addr=$a"
	sep='&'
done
export FERRY_REDIS_MODE=cluster
export FERRY_REDIS_URL="$url"
log "throwaway Redis Cluster (pids ${pids[*]}) at $FERRY_REDIS_URL"

set +e
"$@"
status=$?
set -e
exit "$status"
