# shellcheck shell=bash
# etcd for the control plane, built from its Go module in a wrapper module (server/v3 carries
# replace lines, so it cannot be `go install`ed). Data under run/data/etcd; fsync off (test cluster).
# shellcheck disable=SC2034  # read by envctl
etcd_timeout=60

etcd_fetch() {
  go_build_tool etcd "$ETCD_VERSION" "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" go.etcd.io/etcd/server/v3 "-s -w"
}

etcd_start() {
  mkdir -p "$DATA_DIR/etcd"
  start_bg etcd "$BIN_DIR/etcd-$ETCD_VERSION" --name dataflow --data-dir "$DATA_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "dataflow=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
}

etcd_ready() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

etcd_vars() { echo "export DATAFLOW_ETCD_URL='http://127.0.0.1:$ETCD_PORT'"; }
