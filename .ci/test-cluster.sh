#!/usr/bin/env bash
# test-cluster.sh [GO TEST FLAGS...]
#
# The Redis Cluster pass of `make test`: the packages whose integration tests
# talk to Redis (credential cache and registry, task state, the Redis lock,
# the keyspace walk, the fleet-wide admission leases, the worker pipeline,
# the test helpers' slot checks, the devstack's seeding, the bench's workers)
# run again against a throwaway 6-node Redis Cluster
# (.ci/with-redis-cluster.sh), so a command, script or pipeline that spans
# cluster slots fails here even though a single server accepts it. CLUSTER_PKGS overrides the package list.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
pkgs=${CLUSTER_PKGS:-./credcache/... ./taskstate/... ./internal/redislock/... ./internal/redisconn/... ./admission/... ./worker/... ./internal/testenv/...}

# shellcheck disable=SC2086 # word splitting of the package list is intended
exec .ci/with-redis-cluster.sh bash -c '
	set -euo pipefail
	'"$GO"' test -race -count=1 "$@" '"$pkgs"'
	'"$GO"' test -race -count=1 -run "^TestBinary$" ./cmd/devstack/
	'"$GO"' test -race -count=1 -run "^TestSmokeRedisURL$" ./cmd/ferrybench/
' test-cluster "$@"
