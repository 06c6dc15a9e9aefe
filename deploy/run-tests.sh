#!/usr/bin/env bash
# The whole test suite on SQLite, then on a real PostgreSQL.
# With DATABASE_URL=postgres://... the PostgreSQL pass uses that server; otherwise it starts a
# throwaway one (deploy/pg-temp.sh) and stops it afterwards, whatever happens.
# Extra arguments go to pytest on both passes.
set -uo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

# The end-to-end tests (tests/e2e, in the PostgreSQL pass) put a real nginx in front of gunicorn:
# Debian's package, installed here when it is missing and we run as root.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "run-tests: installing Debian's nginx package" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >&2
    else
        echo "run-tests: nginx is missing (Debian's nginx package); the nginx test will fail" >&2
    fi
fi

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
