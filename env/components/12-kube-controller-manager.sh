# shellcheck shell=bash
# kube-controller-manager: garbage collection (owner references), namespace deletion,
# Deployment → ReplicaSet → Pod, the default ServiceAccount of each namespace and its tokens,
# kube-root-ca.crt, VAP type checking. Built with the apiserver (11-kube-apiserver.sh).
# Node controllers are off: the kwok node has no pod CIDR and no cloud, and node-lifecycle would
# taint/evict it whenever a kwok heartbeat is late. No delegated authn/authz: only /healthz is served.
# shellcheck disable=SC2034  # read by envctl
kube_controller_manager_timeout=60

kube_controller_manager_fetch() { kube_apiserver_fetch; }

kube_controller_manager_start() {
  mkdir -p "$DATA_DIR/kube-controller-manager"
  start_bg kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_PATH" --bind-address 127.0.0.1 \
    --secure-port "$KUBE_CONTROLLER_MANAGER_PORT" --cert-dir "$DATA_DIR/kube-controller-manager" \
    --service-account-private-key-file "$K8S_PKI/sa.key" --root-ca-file "$K8S_PKI/ca.crt" \
    --cluster-signing-cert-file "$K8S_PKI/ca.crt" --cluster-signing-key-file "$K8S_PKI/ca.key" \
    --controllers '*,-node-ipam-controller,-node-lifecycle-controller,-cloud-node-lifecycle-controller,-node-route-controller,-service-lb-controller' \
    --leader-elect=false --concurrent-gc-syncs 10 --v=1
}

kube_controller_manager_ready() { curl -fsSk --max-time 2 "https://127.0.0.1:$KUBE_CONTROLLER_MANAGER_PORT/healthz" | grep -q '^ok'; }
