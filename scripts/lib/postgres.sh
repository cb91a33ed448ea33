# Finds a PostgreSQL server for the scripts, in this order:
#   1. DATABASE_URL, when set;
#   2. a server answering on localhost:5432 (user postgres);
#   3. a throwaway cluster under target/pg-cluster, created and started with the locally
#      installed server binaries (initdb, pg_ctl).
# Sourcing this file sets PG_ADMIN_URL: a URL of the server's `postgres` database.

pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/pgsql/bin; do
    [ -x "$candidate/initdb" ] && { echo "$candidate"; return; }
  done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

pg_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$1" -p "$2" -t 2
  else
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
  fi
}

# start_throwaway_cluster [name] [port] [extra server options]: creates (once) and starts a
# cluster under target/<name> (or, as root in a checkout the postgres user cannot enter, under
# the temporary directory), prints its admin URL.
start_throwaway_cluster() {
  local root dir port bindir as extra
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  dir="$root/target/${1:-pg-cluster}"
  port="${2:-${PG_THROWAWAY_PORT:-54329}}"
  extra="${3:-}"
  bindir="$(pg_bindir)"
  if [ -z "$bindir" ]; then
    echo "no PostgreSQL found: set DATABASE_URL, start a server on localhost:5432, or install the server binaries (initdb, pg_ctl)" >&2
    return 1
  fi
  as=()
  if [ "$(id -u)" = 0 ]; then
    as=(runuser -u postgres --)   # initdb refuses to run as root
    # The server runs as `postgres`, which may not be able to enter the checkout (under
    # root's home, say): the cluster then lives under the temporary directory instead.
    mkdir -p "$root/target"
    if ! runuser -u postgres -- test -x "$root/target"; then
      dir="${TMPDIR:-/tmp}/pg-catalog-sync-$(printf '%s' "$root" | cksum | cut -d' ' -f1)/${1:-pg-cluster}"
      mkdir -p "$(dirname "$dir")"
    fi
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${as[@]}" "$bindir/initdb" -A trust -U postgres -D "$dir/data" >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2; return 1; }
  fi
  if ! pg_answers 127.0.0.1 "$port"; then
    "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 $extra" start >/dev/null || {
      cat "$dir/server.log" >&2; return 1; }
  fi
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

if [ -n "${DATABASE_URL:-}" ]; then
  PG_ADMIN_URL="$DATABASE_URL"
elif pg_answers 127.0.0.1 5432; then
  PG_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
else
  echo "no server on localhost:5432: starting a throwaway cluster under target/pg-cluster" >&2
  PG_ADMIN_URL="$(start_throwaway_cluster)" || exit 1
fi
export PG_ADMIN_URL
