# shellcheck shell=bash
# kube-apiserver (also builds kube-controller-manager and kube-scheduler: one wrapper module with
# k8s.io/kubernetes and its 31 staging modules replaced by their published versions).
# Auth: a local CA signs the serving certificate; clients use a static admin token (system:masters).
# The admin kubeconfig is run/kubeconfig. The real node's kubelet (16-kubelet.sh) is reached at its
# InternalIP: its Hostname address is a node name no resolver here knows (a lookup would leave the host).
# shellcheck disable=SC2034  # read by envctl
kube_apiserver_timeout=120
K8S_BIN="$BIN_DIR/k8s-$K8S_VERSION"
K8S_PKI="$CONF_DIR/kube-apiserver"
KUBECONFIG_PATH="$RUN_DIR/kubeconfig"
K8S_STAGING="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
sample-apiserver sample-cli-plugin sample-controller"

kube_apiserver_fetch() {
  [[ -x $K8S_BIN/kube-apiserver && -x $K8S_BIN/kube-controller-manager && -x $K8S_BIN/kube-scheduler ]] && return 0
  local wd="$BUILD_DIR/go-k8s-$K8S_VERSION"
  mkdir -p "$wd"
  # One build at a time (controller-manager and scheduler fetch through here too); output in build.log.
  (
    flock 9
    [[ -x $K8S_BIN/kube-apiserver && -x $K8S_BIN/kube-controller-manager && -x $K8S_BIN/kube-scheduler ]] && exit 0
    cd "$wd" || exit 1
    local m minor=${K8S_VERSION#*.}
    minor=${minor%%.*}
    {
      printf 'module local/k8sbins\n\ngo 1.26\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
      for m in $K8S_STAGING; do printf '\tk8s.io/%s => k8s.io/%s v%s\n' "$m" "$m" "$K8S_STAGING_VERSION"; done
      printf ')\n'
    } >go.mod
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler"\n)\n' >tools.go
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
    rm -rf "$K8S_BIN.tmp"
    { go mod tidy && go build -trimpath -ldflags "$ldflags" -o "$K8S_BIN.tmp/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
    } >build.log 2>&1 || exit 1
    rm -rf "$K8S_BIN" && mv "$K8S_BIN.tmp" "$K8S_BIN"
  ) 9>"$wd/.lock" || { tail -n 30 "$wd/build.log" >&2; die "building Kubernetes $K8S_VERSION failed"; }
}

# One CA, a serving cert for 127.0.0.1/localhost, a service-account key pair, the admin token.
k8s_pki() {
  [[ -f $K8S_PKI/admin.token ]] && return 0
  mkdir -p "$K8S_PKI"
  (
    cd "$K8S_PKI" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=dataflow-local-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile san.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >admin.token
    printf '%s,admin,admin,"system:masters"\n' "$(<admin.token)" >tokens.csv
  ) || die "generating control-plane certificates failed"
}

k8s_kubeconfig() {
  cat >"$KUBECONFIG_PATH" <<KC
apiVersion: v1
kind: Config
clusters:
- name: dataflow-local
  cluster:
    server: https://127.0.0.1:$KUBE_APISERVER_PORT
    certificate-authority: $K8S_PKI/ca.crt
users:
- name: admin
  user:
    token: $(<"$K8S_PKI/admin.token")
contexts:
- name: dataflow-local
  context: {cluster: dataflow-local, user: admin, namespace: default}
current-context: dataflow-local
KC
  chmod 600 "$KUBECONFIG_PATH"
}

kube_apiserver_start() {
  k8s_pki
  k8s_kubeconfig
  start_bg kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$KUBE_APISERVER_PORT" --cert-dir "$K8S_PKI" \
    --tls-cert-file "$K8S_PKI/apiserver.crt" --tls-private-key-file "$K8S_PKI/apiserver.key" \
    --client-ca-file "$K8S_PKI/ca.crt" --token-auth-file "$K8S_PKI/tokens.csv" \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$K8S_PKI/sa.pub" \
    --service-account-signing-key-file "$K8S_PKI/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode Node,RBAC --allow-privileged=true --profiling=false \
    --kubelet-preferred-address-types InternalIP \
    --endpoint-reconciler-type none --v=1
}

kube_apiserver_ready() {
  [[ -f $KUBECONFIG_PATH ]] || return 1
  curl -fsS --max-time 3 --cacert "$K8S_PKI/ca.crt" -H "Authorization: Bearer $(<"$K8S_PKI/admin.token")" \
    "https://127.0.0.1:$KUBE_APISERVER_PORT/readyz" | grep -q '^ok'
}

kube_apiserver_vars() {
  echo "export KUBECONFIG='$KUBECONFIG_PATH'"
  echo "export K8S_AUTH_KUBECONFIG='$KUBECONFIG_PATH'"
}
