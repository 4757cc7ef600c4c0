# shellcheck shell=bash
# kwok plays the kubelet: the kwok controller (not kwokctl) runs against our apiserver, manages the
# one fake Node created here (annotation kwok.x-k8s.io/node=fake) and moves the pods bound to it
# through their lifecycle (Running, Ready, deleted) without running any container — there is no
# container engine here. Deployments therefore become Available and the operator sees real status.
# The controller has no built-in stages: its --config is kwok's own "fast" stage set (node-initialize,
# node-heartbeat, pod-ready/complete/delete), copied from the module at fetch time. No node Lease:
# with a Lease a restarted kwok (new identity) waits for the old lease to expire before it manages
# the node again, and nothing here reads node leases (node-lifecycle controller is off).
# shellcheck disable=SC2034  # read by envctl
kwok_timeout=60
KWOK_NODE=kwok-node-0
KWOK_STAGES="$DL_DIR/kwok-$KWOK_VERSION/stages-fast.yaml"

kwok_fetch() {
  go_build_tool kwok "$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok "-s -w"
  [[ -s $KWOK_STAGES ]] && return 0
  local dir f
  dir=$(cd "$BUILD_DIR/go-kwok-$KWOK_VERSION" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok) || die "kwok module not found"
  mkdir -p "${KWOK_STAGES%/*}"
  for f in node/fast/node-initialize node/heartbeat/node-heartbeat \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    printf -- '---\n'; cat "$dir/kustomize/stage/$f.yaml" || return 1
  done >"$KWOK_STAGES.tmp" || die "copying kwok stages failed"
  mv "$KWOK_STAGES.tmp" "$KWOK_STAGES"
}

kwok_start() {
  start_bg kwok "$BIN_DIR/kwok-$KWOK_VERSION" --config "$KWOK_STAGES" --kubeconfig "$KUBECONFIG_PATH" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 0 --cidr 10.244.0.1/16 --node-ip 10.0.0.2 \
    --server-address "127.0.0.1:$KWOK_PORT"
  kubectl --kubeconfig "$KUBECONFIG_PATH" apply -f - >/dev/null <<NODE || die "creating the kwok node failed"
apiVersion: v1
kind: Node
metadata:
  name: $KWOK_NODE
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: $KWOK_NODE, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
  capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
NODE
  # The TaintNodesByCondition admission plugin gives a new Node the not-ready taint; the node-lifecycle
  # controller that would lift it is off (see 12-kube-controller-manager.sh), so lift it here.
  kubectl --kubeconfig "$KUBECONFIG_PATH" patch node "$KWOK_NODE" --type merge -p '{"spec":{"taints":null}}' >/dev/null \
    || die "untainting the kwok node failed"
}

# Ready = kwok answers its health endpoint and has marked the fake node Ready, and it has no taint.
kwok_ready() {
  http_ok "http://127.0.0.1:$KWOK_PORT/healthz" || return 1
  [[ $(kubectl --kubeconfig "$KUBECONFIG_PATH" get node "$KWOK_NODE" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.spec.taints}' 2>/dev/null) == True/ ]]
}
