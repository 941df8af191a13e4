#!/usr/bin/env bash
# The test suite runs every DB test on PostgreSQL too: start the local cluster if it is down.
set -uo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done
fi
if [ "${CI:-}" = "true" ]; then echo "error: PostgreSQL at 127.0.0.1:5432 is not available" >&2; exit 1; fi
echo "warning: PostgreSQL is not available; its tests will be skipped" >&2
