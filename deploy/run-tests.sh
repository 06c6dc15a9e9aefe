#!/usr/bin/env bash
# The whole test suite on SQLite, then on a real PostgreSQL.
# With DATABASE_URL=postgres://... the PostgreSQL pass uses that server; otherwise it starts a
# throwaway one (deploy/pg-temp.sh) and stops it afterwards, whatever happens.
# Extra arguments go to pytest on both passes.
set -uo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

# Debian packages some tests drive, installed here (one apt-get run for whatever is missing)
# when we run as root: nginx, which the end-to-end tests (tests/e2e, in the PostgreSQL pass) put
# in front of gunicorn, and chromium, the headless browser of the admin's browser tests
# (tests/browser, Playwright).
missing=()
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    missing+=(nginx)
fi
if [ ! -x /usr/bin/chromium ]; then
    missing+=(chromium)
fi
# Postfix (with the SASL modules its smtp client authenticates with) for tests/postfix: a
# private instance started by the tests; the system one stays unconfigured and stopped.
if [ ! -x /usr/sbin/postfix ]; then
    missing+=(postfix libsasl2-modules)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "run-tests: installing Debian's ${missing[*]} package(s)" >&2
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
    else
        for package in "${missing[@]}"; do
            case $package in
            nginx) echo "run-tests: nginx is missing (Debian's nginx package); the nginx test will fail" >&2 ;;
            chromium) echo "run-tests: /usr/bin/chromium is missing (Debian's chromium package); the browser tests are skipped" >&2 ;;
            postfix) echo "run-tests: Postfix is missing (Debian's postfix package); the Postfix tests are skipped" >&2 ;;
            esac
        done
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
