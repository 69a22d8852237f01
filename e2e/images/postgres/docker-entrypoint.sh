#!/bin/sh
# The entrypoint of devctl's Debian-built PostgreSQL image. It follows the
# contract of the official `postgres` image, so the platform-mocks chart runs
# either one unchanged:
#   POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres),
#   POSTGRES_DB (default $POSTGRES_USER), PGDATA;
#   /docker-entrypoint-initdb.d/*.sql run once, on an empty PGDATA, before the
#   server accepts TCP connections;
#   arguments starting with "-" are passed to postgres.
set -eu

if [ "${1#-}" != "$1" ] || [ $# -eq 0 ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi
shift

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
export PGDATA

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"

  seeds=$(find /docker-entrypoint-initdb.d -maxdepth 1 -name '*.sql' 2>/dev/null | LC_ALL=C sort)
  if [ "$db" != postgres ] || [ -n "$seeds" ]; then
    # A server on the Unix socket only: nothing connects over TCP until the
    # seeds have run.
    sock=$(mktemp -d)
    pg_ctl -D "$PGDATA" -w -s -o "-c listen_addresses='' -c unix_socket_directories=$sock -c fsync=off" start
    if [ "$db" != postgres ]; then
      psql -h "$sock" -U "$user" -d postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE DATABASE \"$db\""
    fi
    for f in $seeds; do
      echo "docker-entrypoint.sh: running $f"
      psql -h "$sock" -U "$user" -d "$db" -v ON_ERROR_STOP=1 -q -f "$f"
    done
    pg_ctl -D "$PGDATA" -w -s -m fast stop
    rm -rf "$sock"
  fi
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
