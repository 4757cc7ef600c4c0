# shellcheck shell=bash
# kwok plays the kubelet: it manages one fake Node (kwok-node-0) and moves the pods bound to it
# through their lifecycle (Running, Ready) without running any container — there is no container
# engine here. Deployments therefore become Available and the operator sees real status.
kwok_timeout=60
KWOK_NODE=kwok-node-0

kwok_fetch() { go_build_tool kwok "$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok "-s -w"; }

kwok_start() {
  start_bg kwok "$BIN_DIR/kwok" --kubeconfig "$KUBECONFIG_PATH" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom \
    --cidr=10.0.0.1/24 --node-ip=10.0.0.1 --server-address "127.0.0.1:$KWOK_PORT"
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
}

kwok_ready() {
  kubectl --kubeconfig "$KUBECONFIG_PATH" get node "$KWOK_NODE" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True
}
