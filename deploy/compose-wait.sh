#!/bin/sh
# Entrypoint of the ferry containers in docker-compose.yml: waits until the
# devstack has seeded the world and written its environment to the shared
# volume, loads it, points the AWS endpoint at the devstack container, and
# runs the command (e.g. `ferry work`).
set -eu
ready=${DEVSTACK_READY_FILE:-/shared/ready}
envfile=${DEVSTACK_ENV_FILE:-/shared/devstack.env}
i=0
while [ ! -f "$ready" ]; do
  i=$((i + 1))
  if [ "$i" -gt 120 ]; then
    echo "compose-wait: devstack not ready after 120 s ($ready missing)" >&2
    exit 1
  fi
  sleep 1
done
. "$envfile"
# The devstack exports its own listen address; other containers reach it by
# service name.
export AWS_ENDPOINT_URL="${DEVSTACK_ENDPOINT:-http://devstack:4566}"
exec "$@"
