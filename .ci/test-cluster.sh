#!/usr/bin/env bash
# test-cluster.sh [GO TEST FLAGS...]
#
# The Redis Cluster pass of `make test`: the tests whose outcome a cluster
# can change run again against a throwaway 6-node Redis Cluster
# (.ci/with-redis-cluster.sh). A cluster changes where keys live, so a
# script, transaction or multi-key command whose keys span slots fails
# there (CROSSSLOT) even though a single server accepts it, a keyspace walk
# must visit every master, and clients follow MOVED redirects. This pass
# therefore runs:
#
#   - every test of the packages that own Redis keys and scripts: the
#     credential cache and registry, task state, the Redis lock, the
#     keyspace walk, the fleet-wide admission leases, and the test helpers'
#     slot checks;
#   - the worker tests whose tasks take the Redis paths a task can take on
#     the test Redis: the begin pipeline that spans a task's slot and its
#     customer's (every access mode, TestDemoPaths), a duplicate delivery
#     meeting the terminal record (TestDuplicateDeliveryOneEvent), a failing
#     task's last error (TestPersistentFaultReachesDLQ), interrupted tasks
#     releasing their locks (TestShutdownDrainsAndReleases), and the health
#     PING of every master (TestRedisWatch). The worker's other tests either
#     take no Redis path of their own (SQS and S3 behaviour: ordering, acks,
#     visibility, deferral, invalid messages) or run on a private
#     redis-server (TestRedisOutageTasksComplete), which is one server in
#     both passes;
#   - the devstack seeding a cluster (the one TestBinary case that reads the
#     mode) and the bench's workers, the ferry binary in cluster mode
#     (TestSmokeRedisURL).
#
# CLUSTER_PKGS overrides the package list of the first step. TESTVET, when
# set, is passed to every go test here: .ci/test.sh sets -vet=off, having
# run go vet on every package already.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
vet=${TESTVET:-}
pkgs=${CLUSTER_PKGS:-./credcache/... ./taskstate/... ./internal/redislock/... ./internal/redisconn/... ./admission/... ./internal/testenv/...}
worker_tests='^(TestDemoPaths|TestDuplicateDeliveryOneEvent|TestPersistentFaultReachesDLQ|TestShutdownDrainsAndReleases|TestRedisWatch)$'

# shellcheck disable=SC2086 # word splitting of the package list is intended
exec .ci/with-redis-cluster.sh bash -c '
	set -euo pipefail
	'"$GO"' test -race -count=1 '"$vet"' "$@" '"$pkgs"'
	'"$GO"' test -race -count=1 '"$vet"' -run '"'$worker_tests'"' "$@" ./worker/
	'"$GO"' test -race -count=1 '"$vet"' -run "^TestBinary$/seeds_the_cluster$" ./cmd/devstack/
	'"$GO"' test -race -count=1 '"$vet"' -run "^TestSmokeRedisURL$" ./cmd/ferrybench/
' test-cluster "$@"
