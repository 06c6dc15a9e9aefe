#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks, on 127.0.0.1 only.
#   deploy/pg-temp.sh start DIR   -> initdb + start in DIR, prints the DATABASE_URL
#   deploy/pg-temp.sh stop DIR    -> stops it and removes DIR
# Run as root it runs the server as the `postgres` user (PostgreSQL refuses to run as root).
# Installs Debian's postgresql package first when no initdb is found and apt-get is available.
set -euo pipefail
cmd=${1:?usage: pg-temp.sh start|stop DIR}
dir=${2:?usage: pg-temp.sh start|stop DIR}

find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ] && { pg_config --bindir; return; }
    command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return; }
    return 1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bindir=$(find_bindir) || {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "pg-temp: installing Debian's postgresql package" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
        bindir=$(find_bindir)
    else
        echo "pg-temp: no PostgreSQL server found (install Debian's postgresql package)" >&2
        exit 1
    fi
}

case "$cmd" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Durability is worthless for a throwaway test database; speed is not.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    [ -d "$dir/data" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg-temp.sh start|stop DIR" >&2; exit 2 ;;
esac
