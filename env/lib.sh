# shellcheck shell=bash
# Shared helpers of the local environment: where things live, how a process is started and
# recorded, how readiness is awaited. Sourced by env/envctl and by every env/components/*.sh.
#
# Layout (everything outside the checkout, so a fresh clone reuses it):
#   $DATAFLOW_ENV_HOME/            default ~/.cache/dataflow-env
#     dl/        downloads (jars, tarballs) keyed by version
#     bin/       built binaries, one file per tool, suffixed by version, plus an unversioned symlink
#     build/     Go wrapper modules and Maven projects used to build/fetch
#     venv/      the Python virtualenv (tooling + tests + processor dependencies)
#     run/       runtime state of the current environment:
#       logs/<component>.log   pids/<component>.pid   data/<component>/   conf/<component>/
set -o pipefail

ENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$ENV_DIR/.." && pwd)
# shellcheck source=versions.env
. "$ENV_DIR/versions.env"

DATAFLOW_ENV_HOME=${DATAFLOW_ENV_HOME:-$HOME/.cache/dataflow-env}
DL_DIR=$DATAFLOW_ENV_HOME/dl
BIN_DIR=$DATAFLOW_ENV_HOME/bin
BUILD_DIR=$DATAFLOW_ENV_HOME/build
VENV_DIR=$DATAFLOW_ENV_HOME/venv
RUN_DIR=${DATAFLOW_ENV_RUN:-$DATAFLOW_ENV_HOME/run}
LOG_DIR=$RUN_DIR/logs
PID_DIR=$RUN_DIR/pids
DATA_DIR=$RUN_DIR/data
CONF_DIR=$RUN_DIR/conf
mkdir -p "$DL_DIR" "$BIN_DIR" "$BUILD_DIR" "$LOG_DIR" "$PID_DIR" "$DATA_DIR" "$CONF_DIR"

JAVA17_HOME=${JAVA17_HOME:-$(ls -d /usr/lib/jvm/java-17-openjdk-amd64 2>/dev/null || true)}
JAVA25_HOME=${JAVA25_HOME:-$(ls -d /usr/lib/jvm/temurin-25-jdk-amd64 2>/dev/null || true)}
export GOFLAGS=${GOFLAGS:--mod=mod}
export PATH="$BIN_DIR:$VENV_DIR/bin:$PATH"

# Default ports: all on 127.0.0.1, chosen away from the usual defaults (8080, 9000, 9092, 5432…)
# so that the environment can run beside other software. Each is overridable by its variable.
: "${ETCD_PORT:=23790}" "${ETCD_PEER_PORT:=23800}"
: "${KUBE_APISERVER_PORT:=16443}" "${KUBE_CONTROLLER_MANAGER_PORT:=16257}" "${KUBE_SCHEDULER_PORT:=16259}" "${KWOK_PORT:=16247}"
: "${KAFKA_PORT:=19092}" "${KAFKA_CONTROLLER_PORT:=19093}" "${KAFKA_TLS_PORT:=19094}" "${KAFKA_SASL_PORT:=19095}"
: "${POSTGRES_PORT:=15432}"
: "${S3_PORT:=19000}"
: "${NESSIE_PORT:=19120}" "${NESSIE_MANAGEMENT_PORT:=19121}"
: "${TRINO_PORT:=18080}"

log() { printf '[env] %s\n' "$*" >&2; }
die() { printf '[env] ERROR: %s\n' "$*" >&2; exit 1; }

# pid_of NAME: the recorded pid when that process is still alive, else nothing.
pid_of() {
  local f="$PID_DIR/$1.pid" pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && { echo "$pid"; return 0; }
  return 1
}

# start_bg NAME CMD...: start CMD detached (own session, so it outlives the caller), append its
# output to logs/NAME.log and record its pid.
start_bg() {
  local name=$1; shift
  local logf="$LOG_DIR/$name.log"
  printf '\n==== %s start %s\n' "$(date -Is)" "$*" >>"$logf"
  setsid "$@" >>"$logf" 2>&1 </dev/null &
  echo $! >"$PID_DIR/$name.pid"
}

# stop_pid NAME: TERM the recorded process (and its process group), KILL after a grace period.
stop_pid() {
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$PID_DIR/$name.pid"; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID_DIR/$name.pid"
}

# wait_until TIMEOUT_S NAME CMD...: poll CMD until it succeeds; fail with the log tail otherwise.
wait_until() {
  local timeout=$1 name=$2; shift 2
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    if [[ -f $PID_DIR/$name.pid ]] && ! pid_of "$name" >/dev/null; then
      log "$name exited during start; last log lines:"; tail -n 40 "$LOG_DIR/$name.log" >&2; return 1
    fi
    sleep 0.5
  done
  log "$name not ready after ${timeout}s; last log lines:"; tail -n 40 "$LOG_DIR/$name.log" >&2
  return 1
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_ok() { curl -fsS -o /dev/null --max-time 3 "$@"; }

# go_build_tool NAME VERSION MODULE@VERSION PKG [LDFLAGS]: build a Go main package inside a wrapper
# module under build/ (so replace lines and pins live there), into bin/NAME-VERSION, linked as bin/NAME.
# Concurrent callers of the same tool wait on a lock instead of building twice; the go output goes to
# build/go-NAME-VERSION/build.log and is shown only on failure.
go_build_tool() {
  local name=$1 version=$2 modver=$3 pkg=$4 ldflags=${5:-}
  local out="$BIN_DIR/$name-$version"
  if [[ ! -x $out ]]; then
    local wd="$BUILD_DIR/go-$name-$version"
    mkdir -p "$wd"
    (
      flock 9
      [[ -x $out ]] && exit 0
      cd "$wd" || exit 1
      [[ -f go.mod ]] || go mod init "local/$name" >/dev/null 2>&1
      { go get "$modver" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp.$$" "$pkg"; } >build.log 2>&1 \
        && mv "$out.tmp.$$" "$out"
    ) 9>"$wd/.lock" || { tail -n 30 "$wd/build.log" >&2; die "building $name $version failed"; }
  fi
  ln -sfn "$out" "$BIN_DIR/$name"
}

# mvn_fetch GROUP:ARTIFACT:VERSION[:PACKAGING[:CLASSIFIER]] DEST: download one artifact into DEST.
mvn_fetch() {
  local coords=$1 dest=$2
  [[ -s $dest ]] && return 0
  local tmp
  tmp=$(mktemp -d "$DL_DIR/.mvn.XXXXXX")
  mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$coords" -DoutputDirectory="$tmp" >&2 || { rm -rf "$tmp"; die "maven refused $coords"; }
  mkdir -p "$(dirname "$dest")"
  mv "$tmp"/* "$dest" && rm -rf "$tmp"
}

# The real node's network (15-containerd.sh, 16-kubelet.sh, docs/local-environment/real-node.md): a
# bridge on this machine whose gateway address is where pods reach the servers (relays and extra
# listeners). Away from kwok's 10.244/16, the service range 10.0.0.0/24, tests/e2e/netns.py's
# 10.231.0.0/30 and podman's default 10.88/16.
: "${NODE_NAME:=dataflow-node-0}" "${NODE_BRIDGE:=dfnode0}"
: "${NODE_POD_CIDR:=10.232.0.0/24}" "${NODE_GATEWAY:=10.232.0.1}"
: "${NODE_SERVICE_CIDR:=10.0.0.0/24}" "${NODE_SERVICE_VIP:=10.0.0.1}"
: "${KAFKA_NODE_PORT:=19096}"
: "${NODE_LABEL:=dataflow.io/real-node}" "${NODE_TAINT:=dataflow.io/real-node}" "${KUBELET_HEALTHZ_PORT:=16248}"
