# redis-node.sh: sourced by with-redis.sh and with-redis-cluster.sh, which
# start throwaway redis-servers on free loopback ports.

# port_in_use PORT: true when something listens on 127.0.0.1:PORT
# (connecting succeeds only then).
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_node PORT DIR [REDIS-SERVER OPTIONS...] starts a redis-server without
# persistence on 127.0.0.1:PORT, its files and log in DIR, and waits until
# INFO proves the server answering on PORT is that one. redis-server refuses
# --port 0, so callers pick ports and retry. The server runs in the
# background of this shell (not daemonized), so NODE_PID, set as soon as it
# starts (for the caller's cleanup), is its PID for certain. When it exits
# at once (it lost the port to someone else) or does not answer within 5 s,
# it is stopped, NODE_PID is emptied and start_node returns 1.
start_node() {
	local p=$1 dir=$2
	shift 2
	redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
		--logfile "$dir/redis.log" "$@" >/dev/null 2>&1 &
	NODE_PID=$!
	for _ in $(seq 1 100); do
		if ! kill -0 "$NODE_PID" 2>/dev/null; then
			break
		fi
		if redis-cli -p "$p" INFO server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$NODE_PID"; then
			return 0
		fi
		sleep 0.05
	done
	kill "$NODE_PID" 2>/dev/null || true
	wait "$NODE_PID" 2>/dev/null || true
	NODE_PID=""
	return 1
}
