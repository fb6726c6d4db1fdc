# Shared helpers for scripts/dev and scripts/test: install what is missing, find or start
# PostgreSQL. Sourced, not run.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

# cdk's signatory build script needs protoc.
ensure_protoc() {
  if ! command -v protoc >/dev/null 2>&1; then
    log "installing protoc (protobuf-compiler)"
    apt_install protobuf-compiler
  fi
}

pg_reachable() {
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

pg_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# Sets DATABASE_URL to a reachable server's database named $1: the given DATABASE_URL's
# server, else 127.0.0.1:5432, else a local cluster under $DEV_DIR/pg (started if needed).
ensure_postgres() {
  local db="$1" server
  if ! command -v psql >/dev/null 2>&1 || [ -z "$(pg_bindir)" ]; then
    log "installing PostgreSQL"
    apt_install postgresql postgresql-contrib
  fi
  local current="${DATABASE_URL:-}"
  for server in "${current%/*}" "postgres://postgres@127.0.0.1:5432"; do
    [ -n "$server" ] || continue
    if pg_reachable "$server/postgres"; then
      export DATABASE_URL="$server/$db"
      create_database "$server" "$db"
      return
    fi
  done
  start_local_cluster
  export DATABASE_URL="postgres://postgres@127.0.0.1:${PGDEV_PORT}/$db"
  create_database "postgres://postgres@127.0.0.1:${PGDEV_PORT}" "$db"
}

create_database() {
  local server="$1" db="$2"
  if [ "$(psql "$server/postgres" -Atqc "select 1 from pg_database where datname = '$db'")" != 1 ]; then
    psql "$server/postgres" -qc "create database \"$db\"" >/dev/null
  fi
}

# A private cluster (trust auth, loopback only) for machines without a running server, in
# $PG_DEV_DIR (default $DEV_DIR/pg). It keeps running after the script ends, like a service.
start_local_cluster() {
  local bin data run_as=()
  bin="$(pg_bindir)"
  data="${PG_DEV_DIR:-$DEV_DIR/pg}"
  PGDEV_PORT="${PGDEV_PORT:-55432}"
  if [ "$(id -u)" = 0 ]; then
    # initdb and postgres refuse to run as root.
    id postgres >/dev/null 2>&1 || useradd --system --home "$DEV_DIR" postgres
    run_as=(runuser -u postgres --)
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating a local PostgreSQL cluster in $data"
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then
      chown -R postgres "$data"
      chmod o+x "$(dirname "$data")"
    fi
    "${run_as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust >/dev/null
  fi
  if ! pg_reachable "postgres://postgres@127.0.0.1:${PGDEV_PORT}/postgres"; then
    log "starting the local PostgreSQL cluster on 127.0.0.1:${PGDEV_PORT}"
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p ${PGDEV_PORT} -k /tmp" start >/dev/null
  fi
}

# Sets PROMTOOL to a promtool binary, or to empty when none can be had. Debian's `prometheus`
# package ships it; rather than installing the package (a server with its own service), only
# promtool is taken out of the downloaded .deb into $DEV_DIR/promtool.
ensure_promtool() {
  PROMTOOL="$(command -v promtool 2>/dev/null || true)"
  local local_bin="$DEV_DIR/promtool/usr/bin/promtool"
  if [ -z "$PROMTOOL" ] && [ -x "$local_bin" ]; then
    PROMTOOL="$local_bin"
  fi
  if [ -z "$PROMTOOL" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    log "fetching promtool (from Debian's prometheus package, not installed)"
    local tmp
    tmp="$(mktemp -d)"
    mkdir -p "$DEV_DIR/promtool"
    # A new machine may have no package lists yet: update once and try again.
    if (cd "$tmp" && { apt-get download -qq prometheus >/dev/null 2>&1 \
          || { apt-get update -qq >/dev/null 2>&1 && apt-get download -qq prometheus >/dev/null 2>&1; }; }) \
      && dpkg-deb -x "$tmp"/prometheus_*.deb "$DEV_DIR/promtool"; then
      PROMTOOL="$local_bin"
    fi
    rm -rf "$tmp"
  fi
  [ -x "${PROMTOOL:-}" ] || PROMTOOL=""
}
