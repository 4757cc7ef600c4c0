# shellcheck shell=bash
# kubelet: the one real node ("$NODE_NAME"), running pods with containerd + runc (15-containerd.sh).
# Built from the same k8s.io/kubernetes module and staging pins as the control plane, in a wrapper
# module of its own beside it (same module and build caches, so only kubelet's own packages compile).
# The node registers with a taint and a label, so only pods that ask for it land here; kwok
# (14-kwok.sh) manages only its annotated fake node and never this one.
# See docs/local-environment/real-node.md.
# shellcheck disable=SC2034  # read by envctl
kubelet_timeout=180
KUBELET_BIN="$BIN_DIR/k8s-node-$K8S_VERSION/kubelet"
KUBELET_CONF="$CONF_DIR/kubelet"

kubelet_fetch() {
  containerd_fetch
  [[ -x $KUBELET_BIN ]] && return 0
  local wd="$BUILD_DIR/go-k8s-node-$K8S_VERSION" out="${KUBELET_BIN%/*}"
  mkdir -p "$wd"
  (
    flock 9
    [[ -x $KUBELET_BIN ]] && exit 0
    cd "$wd" || exit 1
    local m minor=${K8S_VERSION#*.}
    minor=${minor%%.*}
    {
      printf 'module local/k8snode\n\ngo 1.26\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
      for m in $K8S_STAGING; do printf '\tk8s.io/%s => k8s.io/%s v%s\n' "$m" "$m" "$K8S_STAGING_VERSION"; done
      printf ')\n'
    } >go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kubelet"\n' >tools.go
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
    rm -rf "$out.tmp"
    { go mod tidy && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" k8s.io/kubernetes/cmd/kubelet; } >build.log 2>&1 || exit 1
    rm -rf "$out" && mv "$out.tmp" "$out"
  ) 9>"$wd/.lock" || { tail -n 30 "$wd/build.log" >&2; die "building kubelet $K8S_VERSION failed"; }
}

# A client certificate for system:node:$NODE_NAME (the Node authorizer's identity) and a serving
# certificate for the kubelet API on the gateway, both signed by the control plane's CA.
kubelet_pki() {
  local d=$KUBELET_CONF
  [[ -f $d/.complete && $d/client.crt -nt $K8S_PKI/ca.crt ]] && return 0
  mkdir -p "$d"
  (
    set -e
    cd "$d"
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/O=system:nodes/CN=system:node:$NODE_NAME"
    openssl x509 -req -in client.csr -CA "$K8S_PKI/ca.crt" -CAkey "$K8S_PKI/ca.key" -CAcreateserial -days 3650 \
      -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out client.crt
    openssl req -newkey rsa:2048 -nodes -keyout serving.key -out serving.csr -subj "/CN=$NODE_NAME"
    openssl x509 -req -in serving.csr -CA "$K8S_PKI/ca.crt" -CAkey "$K8S_PKI/ca.key" -CAcreateserial -days 3650 \
      -extfile <(printf 'subjectAltName=IP:%s,DNS:%s\nextendedKeyUsage=serverAuth\n' "$NODE_GATEWAY" "$NODE_NAME") -out serving.crt
    rm -f ./*.csr
    chmod 600 ./*.key
  ) >"$d/pki.log" 2>&1 || { cat "$d/pki.log" >&2; die "generating kubelet certificates failed"; }
  touch "$d/.complete"
}

kubelet_config() {
  local d=$KUBELET_CONF
  cat >"$d/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: dataflow-local
  cluster: {server: "https://127.0.0.1:$KUBE_APISERVER_PORT", certificate-authority: "$K8S_PKI/ca.crt"}
users:
- name: node
  user: {client-certificate: "$d/client.crt", client-key: "$d/client.key"}
contexts:
- name: node
  context: {cluster: dataflow-local, user: node}
current-context: node
KC
  chmod 600 "$d/kubeconfig"
  # Image GC is off in effect (100%): an image removed here cannot be pulled back, there is no
  # registry. The kubelet API answers only on the gateway (pods are refused by iptables, see
  # node_net_up), unauthenticated: this API server has no kubelet client certificate, and only
  # processes of this machine can reach the address. No host DNS is passed to pods (resolvConf "").
  cat >"$d/config.yaml" <<CFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_GATEWAY
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $d/serving.crt
tlsPrivateKeyFile: $d/serving.key
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: $K8S_PKI/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
imageServiceEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: ""
clusterDomain: cluster.local
podLogsDir: $DATA_DIR/kubelet-logs
maxPods: 30
serializeImagePulls: true
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
containerLogMaxSize: 10Mi
containerLogMaxFiles: 2
shutdownGracePeriod: 0s
rotateCertificates: false
serverTLSBootstrap: false
registerNode: true
CFG
}

# The Node object is created here, before the kubelet registers: the TaintNodesByCondition admission
# plugin would give a kubelet-created Node the not-ready taint, and the node-lifecycle controller that
# lifts it is off (12-kube-controller-manager.sh). Only the node's own taint stays: pods land here only
# when they tolerate it (and select the node by its label).
kubelet_node() {
  kubectl --kubeconfig "$KUBECONFIG_PATH" apply -f - >/dev/null <<NODE || die "creating node $NODE_NAME failed"
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  labels: {kubernetes.io/hostname: $NODE_NAME, kubernetes.io/os: linux, kubernetes.io/arch: amd64, $NODE_LABEL: "true"}
spec:
  taints: [{key: $NODE_TAINT, value: "true", effect: NoSchedule}]
NODE
  kubectl --kubeconfig "$KUBECONFIG_PATH" patch node "$NODE_NAME" --type merge \
    -p "{\"spec\":{\"taints\":[{\"key\":\"$NODE_TAINT\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]}}" >/dev/null \
    || die "setting the taints of $NODE_NAME failed"
}

kubelet_start() {
  kubelet_pki
  kubelet_config
  kubelet_node
  mkdir -p "$DATA_DIR/kubelet" "$DATA_DIR/kubelet-logs"
  start_bg kubelet "$KUBELET_BIN" --config "$KUBELET_CONF/config.yaml" --kubeconfig "$KUBELET_CONF/kubeconfig" \
    --root-dir "$DATA_DIR/kubelet" --cert-dir "$KUBELET_CONF" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_GATEWAY" --v=1
}

# Ready = the kubelet answers its health endpoint and the API server shows the node Ready, with no
# taint but its own.
kubelet_ready() {
  http_ok "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" || return 1
  [[ $(kubectl --kubeconfig "$KUBECONFIG_PATH" get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.spec.taints[*].key}' 2>/dev/null) == "True/$NODE_TAINT" ]]
}

# The image the real-node tests run: what `make image` builds and saves (docs/image.md).
# (scripts/build_image.sh names its tar after the image.)
: "${DATAFLOW_IMAGE:=localhost/dataflow-operator:0.1.0}"
: "${DATAFLOW_IMAGE_TAR:=$DATAFLOW_ENV_HOME/image/$(printf '%s' "$DATAFLOW_IMAGE" | tr '/:' '__').tar}"

kubelet_vars() {
  cat <<VARS
export DATAFLOW_IMAGE='$DATAFLOW_IMAGE'
export DATAFLOW_IMAGE_TAR='$DATAFLOW_IMAGE_TAR'
export DATAFLOW_NODE_NAME='$NODE_NAME'
export DATAFLOW_NODE_GATEWAY='$NODE_GATEWAY'
export DATAFLOW_NODE_LABEL='$NODE_LABEL'
export DATAFLOW_NODE_TAINT='$NODE_TAINT'
VARS
}
