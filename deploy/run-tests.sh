#!/usr/bin/env bash
# The whole test suite on SQLite, then on a real PostgreSQL.
# With DATABASE_URL=postgres://... the PostgreSQL pass uses that server; otherwise it starts a
# throwaway one (deploy/pg-temp.sh) and stops it afterwards, whatever happens.
# Extra arguments go to pytest on both passes.
set -uo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

pg_url=${DATABASE_URL:-}
pg_dir=""
cleanup() { [ -n "$pg_dir" ] && deploy/pg-temp.sh stop "$pg_dir"; }
trap cleanup EXIT

echo "== tests on SQLite"
DATABASE_URL= "$py" -m pytest "$@" | tee /tmp/relayapi-sqlite.$$ ; sqlite_rc=${PIPESTATUS[0]}

if [ -z "$pg_url" ]; then
    pg_dir=$(mktemp -d /tmp/relayapi-pg.XXXXXX)
    pg_url=$(deploy/pg-temp.sh start "$pg_dir") || exit 1
fi
echo "== tests on PostgreSQL"
DATABASE_URL=$pg_url "$py" -m pytest "$@" | tee /tmp/relayapi-pg.$$ ; pg_rc=${PIPESTATUS[0]}

echo "== summary"
echo "SQLite:     $(tail -n 1 /tmp/relayapi-sqlite.$$)"
echo "PostgreSQL: $(tail -n 1 /tmp/relayapi-pg.$$)"
rm -f /tmp/relayapi-sqlite.$$ /tmp/relayapi-pg.$$
[ "$sqlite_rc" = 0 ] && [ "$pg_rc" = 0 ]
