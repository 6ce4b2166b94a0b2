#!/usr/bin/env bash
# Make sure the PostgreSQL the tests use answers on 127.0.0.1:5432 (start it if it is down).
set -euo pipefail
host="${ASSAY_TEST_PG_HOST:-127.0.0.1}"
if pg_isready -q -h "$host" -p 5432 2>/dev/null; then
  exit 0
fi
if [ ! -d /etc/postgresql ] || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  echo "PostgreSQL is not installed; installing it from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
version="$(ls /etc/postgresql | sort -V | tail -n 1)"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do
  if pg_isready -q -h "$host" -p 5432; then
    exit 0
  fi
  sleep 1
done
echo "PostgreSQL did not come up on $host:5432" >&2
exit 1
