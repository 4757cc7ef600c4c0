# shellcheck shell=bash
# kube-scheduler: binds pods to the kwok node. Built with the apiserver (11-kube-apiserver.sh).
# No delegated authn/authz: only /healthz is served.
# shellcheck disable=SC2034  # read by envctl
kube_scheduler_timeout=60

kube_scheduler_fetch() { kube_apiserver_fetch; }

kube_scheduler_start() {
  start_bg kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig "$KUBECONFIG_PATH" \
    --bind-address 127.0.0.1 --secure-port "$KUBE_SCHEDULER_PORT" --leader-elect=false --v=1
}

kube_scheduler_ready() { curl -fsSk --max-time 2 "https://127.0.0.1:$KUBE_SCHEDULER_PORT/healthz" | grep -q '^ok'; }
