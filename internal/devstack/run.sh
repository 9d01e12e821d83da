#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 The ha-registry authors
# SPDX-License-Identifier: EUPL-1.2
#
# `make run`: a single-node registry on localhost:5000 with its own
# PostgreSQL and S3 server (versitygw) on loopback, all data under
# $REGISTRY_DATA_DIR (default ./.data). Ctrl-C stops everything; running it
# again reuses the data. `make run` has installed the tools and built
# bin/registry before this runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$(go env GOPATH)/bin:$PATH"

data="$(realpath -m "${REGISTRY_DATA_DIR:-.data}")"
pg_port="${REGISTRY_DEV_PG_PORT:-55432}"
s3_port="${REGISTRY_DEV_S3_PORT:-59000}"
pg_bin=/usr/lib/postgresql/15/bin
mkdir -p "$data/s3/registry" "$data/pg"

as_pg=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root.
  chown postgres: "$data/pg"
  as_pg=(runuser -u postgres --)
fi

if [ ! -f "$data/pg/data/PG_VERSION" ]; then
  "${as_pg[@]}" "$pg_bin/initdb" -D "$data/pg/data" -U postgres --auth=trust -E UTF8 --locale=C >"$data/pg/initdb.log"
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$pg_bin/postgres" -D "$data/pg/data" -h 127.0.0.1 -p "$pg_port" -k "$data/pg" \
  >"$data/pg/postgres.log" 2>&1 &
pids+=($!)

export AWS_ACCESS_KEY_ID=registrydev AWS_SECRET_ACCESS_KEY=registrydevsecret
# A directory under the posix backend's root is a bucket.
versitygw --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --region us-east-1 \
  --port "127.0.0.1:$s3_port" --quiet posix "$data/s3" >"$data/versitygw.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
  sleep 0.1
done
"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" || { echo "PostgreSQL did not start; see $data/pg/postgres.log" >&2; exit 1; }
if ! psql -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'registry'" | grep -q 1; then
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE registry"
fi

export REGISTRY_LISTEN="${REGISTRY_LISTEN:-127.0.0.1:5000}"
export REGISTRY_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/registry?sslmode=disable"
export REGISTRY_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export REGISTRY_S3_BUCKET=registry REGISTRY_S3_REGION=us-east-1 REGISTRY_S3_PATH_STYLE=true
export REGISTRY_LOG_FORMAT="${REGISTRY_LOG_FORMAT:-console}"

echo "registry on http://$REGISTRY_LISTEN (data in $data; Ctrl-C stops)"
bin/registry serve --migrate &
pids+=($!)
wait "${pids[-1]}"
