#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the study tests.
#   source .ci/postgres.sh start   exports BENCH_TEST_POSTGRES_URL (and PG_TMP)
#   .ci/postgres.sh stop           stops it and removes its files
# Uses initdb/pg_ctl from PATH or the Debian layout; installs the postgresql package
# with apt-get when none is found (CI runs as root). As root, the server runs as the
# 'postgres' user (created if missing), since PostgreSQL refuses to run as root.
set -euo pipefail

pg_bin() {
    local d
    for d in "$(dirname "$(readlink -f "$(command -v initdb || echo /nonexistent/x)")")" /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    return 1
}

install_pg() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "postgres.sh: no PostgreSQL binaries and cannot apt-get install them" >&2
        return 1
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local bin user port as
    bin="$(pg_bin)" || { install_pg && bin="$(pg_bin)"; }
    PG_TMP="$(mktemp -d /tmp/bench-pg.XXXXXX)"
    as=()
    if [ "$(id -u)" = 0 ]; then
        user=postgres
        id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
        chown "$user" "$PG_TMP"
        as=(runuser -u "$user" --)
    fi
    port="$(free_port)"
    "${as[@]}" "$bin/initdb" -D "$PG_TMP/data" -U bench --auth=trust -E UTF8 >"$PG_TMP/initdb.log" 2>&1
    "${as[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $PG_TMP -c max_connections=50" start >/dev/null
    "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U bench bench_test
    export PG_TMP PG_BIN="$bin"
    export BENCH_TEST_POSTGRES_URL="postgresql://bench@127.0.0.1:$port/bench_test"
    echo "postgres.sh: PostgreSQL on 127.0.0.1:$port ($PG_TMP)" >&2
}

stop() {
    [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ] || return 0
    local as=()
    [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null || true
    rm -rf "$PG_TMP"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: source .ci/postgres.sh start | .ci/postgres.sh stop" >&2; return 2 2>/dev/null || exit 2 ;;
esac
