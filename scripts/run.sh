#!/usr/bin/env bash
# scripts/run.sh — what `make run` does: build the binaries, start the
# devstack (local S3/SQS/STS behind the IAM gate, plus Redis, seeded with the
# fleet and demo customers and their integrations), start a `ferry work`
# worker on it, enqueue one demo task per access path, and print the events as
# they arrive until Ctrl-C. Every process started here is stopped on exit.
#
# Environment:
#   DEVSTACK_ADDR   listen address of the local AWS endpoint (default 127.0.0.1:4566)
#   DEVSTACK_TLS    1 serves the endpoint over https (CA in .devstack-ca.pem,
#                   exported as AWS_CA_BUNDLE); default plain http
#   FERRY_REDIS_URL used by the devstack when it answers; else an embedded Redis
#   FERRY_METRICS_ADDR the worker's metrics and health (default 127.0.0.1:9090)
#   RUN_STATE_DIR   where the files below go (default: the repository)
#
# Files (all git-ignored):
#   .devstack.env   export lines for a shell:   source .devstack.env
#   .devstack.json  the seeded world: accounts, buckets, objects, expected outcomes
#   .devstack-ca.pem the CA of the https endpoint (DEVSTACK_TLS=1 only)
#   .run/           logs and readiness markers
#   bin/            the devstack and ferry binaries
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
ADDR=${DEVSTACK_ADDR:-127.0.0.1:4566}
STATE=${RUN_STATE_DIR:-.}
RUN_DIR=$STATE/.run
ENV_FILE=$STATE/.devstack.env
MANIFEST=$STATE/.devstack.json
CA_FILE=$STATE/.devstack-ca.pem
tls_flags=()
case ${DEVSTACK_TLS:-} in
"" | 0 | false) ;;
1 | true) tls_flags=(-tls -ca-file "$CA_FILE") ;;
*)
	echo "run: DEVSTACK_TLS=$DEVSTACK_TLS: use 1 for https or 0 (the default) for plain http" >&2
	exit 2
	;;
esac
BIN_DIR=$STATE/bin
READY_TIMEOUT_S=${READY_TIMEOUT_S:-120}

mkdir -p "$RUN_DIR" "$BIN_DIR"
pids=()

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_ready NAME PID LOG TEST...: waits until the command TEST succeeds,
# failing early when PID exits or after READY_TIMEOUT_S (its log LOG then
# says why).
wait_ready() {
	local name=$1 pid=$2 logfile=$3 waited=0
	shift 3
	until "$@"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "run: $name exited before it was ready; its log ($logfile):" >&2
			tail -n 20 "$logfile" >&2 || true
			exit 1
		fi
		if ((waited >= READY_TIMEOUT_S * 10)); then
			echo "run: $name not ready after ${READY_TIMEOUT_S}s; its log ($logfile):" >&2
			tail -n 20 "$logfile" >&2 || true
			exit 1
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
}

start_devstack() {
	echo "run: building $BIN_DIR/devstack" >&2
	"$GO" build -o "$BIN_DIR/devstack" ./cmd/devstack
	rm -f "$RUN_DIR/devstack.ready"
	"$BIN_DIR/devstack" -addr "$ADDR" "${tls_flags[@]}" -env-file "$ENV_FILE" -manifest "$MANIFEST" \
		-tasks-file "$RUN_DIR/demo-tasks.jsonl" \
		-ready-file "$RUN_DIR/devstack.ready" >/dev/null 2>"$RUN_DIR/devstack.log" &
	pids+=($!)
	wait_ready devstack "$!" "$RUN_DIR/devstack.log" test -e "$RUN_DIR/devstack.ready"
	# shellcheck disable=SC1090
	source "$ENV_FILE"
}

# start_worker runs one `ferry work` on the devstack; it is ready once it
# logs that it started (its metrics and health are on $METRICS_ADDR).
start_worker() {
	echo "run: building $BIN_DIR/ferry" >&2
	"$GO" build -o "$BIN_DIR/ferry" ./cmd/ferry
	FERRY_METRICS_ADDR=$METRICS_ADDR FERRY_LOG_FORMAT=json \
		"$BIN_DIR/ferry" work >"$RUN_DIR/worker.log" 2>&1 &
	pids+=($!)
	wait_ready "ferry work" "$!" "$RUN_DIR/worker.log" grep -qs '"worker started"' "$RUN_DIR/worker.log"
}

METRICS_ADDR=${FERRY_METRICS_ADDR:-127.0.0.1:9090}

start_devstack
start_worker

cat <<MSG
devstack is serving at $AWS_ENDPOINT_URL (Redis: $FERRY_REDIS_URL);
one ferry worker runs on it (metrics: http://$METRICS_ADDR/metrics).
  in another shell:   source $ENV_FILE     then e.g.  $BIN_DIR/ferry check-access --customer acme s3://acme-data/img/1.jpg
  the seeded world:   $MANIFEST
  logs:               $RUN_DIR/devstack.log  $RUN_DIR/worker.log
Ctrl-C stops everything.

Enqueueing one demo task per access path:
MSG
"$BIN_DIR/ferry" enqueue <"$RUN_DIR/demo-tasks.jsonl"
echo
echo "Events as they arrive:"
"$BIN_DIR/ferry" events tail --ack &
pids+=($!)

# Exit (and stop the rest) as soon as any service exits.
set +e
wait -n "${pids[@]}"
status=$?
set -e
if ((status != 0)); then
	echo "run: a service exited with status $status; logs are in $RUN_DIR/" >&2
fi
exit "$status"
