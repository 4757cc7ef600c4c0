# shellcheck shell=bash
# node-relay: the servers as pods see them. Every server listens on 127.0.0.1 only; pods reach them
# on the node's gateway address $NODE_GATEWAY (the bridge of 15-containerd.sh), where one socat per
# port forwards to 127.0.0.1 (same port). Kafka is not relayed: its clients reconnect to the address
# the broker advertises, so the broker has a listener of its own on the gateway (21-kafka.sh).
# The `kubernetes` Service VIP (10.0.0.1:443) is DNATed to the API server's relay (node_net_up).
# shellcheck disable=SC2034  # read by envctl
node_relay_timeout=30

node_relay_ports() { echo "$KUBE_APISERVER_PORT $POSTGRES_PORT $S3_PORT $TRINO_PORT $NESSIE_PORT"; }

node_relay_fetch() { containerd_fetch; }

node_relay_start() {
  node_net_up
  local p script=""
  for p in $(node_relay_ports); do
    script+="socat TCP-LISTEN:$p,bind=$NODE_GATEWAY,reuseaddr,fork,backlog=128 TCP:127.0.0.1:$p & "
  done
  start_bg node-relay bash -c "${script}wait"
}

node_relay_ready() {
  local p
  for p in $(node_relay_ports); do
    (exec 3<>"/dev/tcp/$NODE_GATEWAY/$p") 2>/dev/null || return 1
  done
}

node_relay_vars() {
  cat <<VARS
export DATAFLOW_NODE_PG_DSN='postgresql://$POSTGRES_USER:$POSTGRES_PASSWORD@$NODE_GATEWAY:$POSTGRES_PORT/$POSTGRES_DB'
export DATAFLOW_NODE_KAFKA_BOOTSTRAP='$NODE_GATEWAY:$KAFKA_NODE_PORT'
VARS
}
