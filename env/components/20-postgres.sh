# shellcheck shell=bash
# PostgreSQL from Debian's package, run as a plain local process on 127.0.0.1:$POSTGRES_PORT with its
# own cluster in $DATA_DIR/postgres (nothing of the system's cluster is used). Database and role
# `dataflow` (password `dataflow`, allowed to replicate). Tuned for tests: no fsync, no synchronous
# commit. `wal_level = logical` and the wal2json output plugin (Debian's postgresql-15-wal2json) serve
# the postgresql-cdc source.
#
# PostgreSQL refuses to run as root, so as root it runs as the `postgres` OS user. The cache usually
# lives under /root (mode 0700), which that user cannot traverse: it keeps the one capability
# CAP_DAC_READ_SEARCH (ambient) instead of loosening /root's mode.
: "${POSTGRES_DB:=dataflow}" "${POSTGRES_USER:=dataflow}" "${POSTGRES_PASSWORD:=dataflow}"
# shellcheck disable=SC2034  # read by envctl
postgres_timeout=60

postgres_bin() { echo "/usr/lib/postgresql/$POSTGRES_MAJOR/bin"; }

postgres_fetch() {
  [[ -x $(postgres_bin)/postgres && -e /usr/lib/postgresql/$POSTGRES_MAJOR/lib/wal2json.so ]] && return 0
  command -v apt-get >/dev/null || die "postgresql-$POSTGRES_MAJOR is not installed and there is no apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Install only: we run our own cluster, so the package need not create (and start) its "main" one.
  if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
    mkdir -p /etc/postgresql-common && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
  fi
  local pkgs=("postgresql-$POSTGRES_MAJOR" "postgresql-$POSTGRES_MAJOR-wal2json")
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null; } \
    || die "apt-get install ${pkgs[*]} failed"
  [[ -x $(postgres_bin)/postgres ]] || die "postgresql-$POSTGRES_MAJOR installed no $(postgres_bin)/postgres"
}

# postgres_as CMD...: run CMD as the server's OS user (postgres when we are root, else ourselves).
postgres_as_prefix() {
  if ((EUID == 0)); then
    echo setpriv --reuid=postgres --regid=postgres --init-groups \
      --inh-caps=+dac_read_search --ambient-caps=+dac_read_search --
  fi
}
postgres_as() {
  local prefix
  read -r -a prefix <<<"$(postgres_as_prefix)"
  "${prefix[@]}" "$@"
}

postgres_init() {
  local d=$DATA_DIR/postgres pgdata=$DATA_DIR/postgres/pgdata
  [[ -s $pgdata/PG_VERSION ]] && return 0
  rm -rf "$pgdata"
  mkdir -p "$pgdata" "$d/sock"
  if ((EUID == 0)); then chown postgres:postgres "$d" "$pgdata" "$d/sock"; fi
  chmod 0700 "$pgdata"
  postgres_as "$(postgres_bin)/initdb" -D "$pgdata" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$d/initdb.log" 2>&1 \
    || { cat "$d/initdb.log" >&2; die "initdb failed"; }
  # Role and database before the first start, through single-user mode (no socket, no race).
  postgres_as "$(postgres_bin)/postgres" --single -D "$pgdata" -c fsync=off postgres >>"$d/initdb.log" 2>&1 <<SQL \
    || { cat "$d/initdb.log" >&2; die "creating role/database failed"; }
CREATE ROLE $POSTGRES_USER LOGIN CREATEDB REPLICATION PASSWORD '$POSTGRES_PASSWORD';
CREATE DATABASE $POSTGRES_DB OWNER $POSTGRES_USER;
SQL
}

postgres_config() {
  local c=$CONF_DIR/postgres
  mkdir -p "$c"
  cat >"$c/pg_hba.conf" <<'HBA'
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
host    replication all 127.0.0.1/32   scram-sha-256
HBA
  cat >"$c/postgresql.conf" <<CONF
data_directory = '$DATA_DIR/postgres/pgdata'
hba_file = '$c/pg_hba.conf'
ident_file = '$DATA_DIR/postgres/pgdata/pg_ident.conf'
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
unix_socket_directories = '$DATA_DIR/postgres/sock'
max_connections = 200
shared_buffers = 256MB
password_encryption = scram-sha-256
# a test server: durability off
fsync = off
synchronous_commit = off
full_page_writes = off
# logical decoding for the postgresql-cdc source (slots are read through SQL, not walsenders, but
# pg_recvlogical in its bench needs a few)
wal_level = logical
max_wal_senders = 4
max_replication_slots = 32
checkpoint_timeout = 30min
max_wal_size = 2GB
# logs to stderr (the component log)
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
log_timezone = 'UTC'
datestyle = 'iso, mdy'
lc_messages = 'C.UTF-8'
CONF
}

postgres_start() {
  postgres_init
  postgres_config
  local prefix
  read -r -a prefix <<<"$(postgres_as_prefix)"
  start_bg postgres "${prefix[@]}" "$(postgres_bin)/postgres" -c "config_file=$CONF_DIR/postgres/postgresql.conf"
}

# Ready = the dataflow role logs in over TCP with its password and runs a query.
postgres_ready() {
  local out
  out=$(PGCONNECT_TIMEOUT=3 "$(postgres_bin)/psql" -X -q -At "$(postgres_dsn)" -c 'select 1' 2>/dev/null) && [[ $out == 1 ]]
}

# Fast shutdown (SIGINT): the default TERM is PostgreSQL's "smart" shutdown, which waits for clients.
postgres_stop() {
  local pid
  pid=$(pid_of postgres) || { rm -f "$PID_DIR/postgres.pid"; return 0; }
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  stop_pid postgres
}

postgres_dsn() {
  echo "postgresql://$POSTGRES_USER:$POSTGRES_PASSWORD@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DB"
}

postgres_vars() {
  echo "export DATAFLOW_PG_DSN='$(postgres_dsn)'"
}
