#!/bin/sh
# Scale-out harness (docs/rate-limits.md#the-scale-out-harness): builds the
# gateway once and runs three replicas sharing PostgreSQL and Redis on
# loopback, then checks the shared limit, a Redis outage and its end, and a
# SIGKILL of one replica. Needs PostgreSQL and Redis: by default
# 127.0.0.1:5432 and 127.0.0.1:6379, or GATEHOUSE_TEST_POSTGRES_DSN and
# GATEHOUSE_TEST_REDIS_ADDR. Fails (rather than skips) when they are
# unreachable. Extra arguments go to `go test` (e.g. -count=3).
set -eu
cd "$(dirname "$0")/.."
GATEHOUSE_REQUIRE_SERVICES=1 exec go test -count=1 -run '^TestScaleOut$' -v "$@" ./cmd/gatehouse
