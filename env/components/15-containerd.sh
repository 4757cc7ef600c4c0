# shellcheck shell=bash
# containerd + runc: the container runtime of the real node (16-kubelet.sh), from Debian's packages,
# with a config, root and socket of its own under run/ (the system's /etc/containerd is not used, and
# nothing is started through systemd). Also owns the node's network: the bridge $NODE_BRIDGE with
# the gateway $NODE_GATEWAY, the CNI config (bridge + host-local on $NODE_POD_CIDR) and the iptables
# rules that keep pod traffic on this machine. See docs/local-environment/real-node.md.
#
# No registry can be reached: every image the node runs is imported from a local tar with
# `ctr -n k8s.io images import` (the pod sandbox image is a static `pause` built here from
# env/node/pause.go). Root has no CAP_SYS_RESOURCE here, so: the runtime spec sets RLIMIT_NOFILE below
# the machine's hard limit (runc's setrlimit at or above it fails), others are inherited; and
# oom_score_adj is never set below containerd's own (restrict_oom_score_adj).
# shellcheck disable=SC2034  # read by envctl
containerd_timeout=60
CONTAINERD_DIR="$DATA_DIR/containerd"
CONTAINERD_CONF="$CONF_DIR/containerd"
CONTAINERD_SOCK="$CONTAINERD_DIR/containerd.sock"
NODE_PAUSE_IMAGE=registry.k8s.io/pause:3.10
NODE_PAUSE_TAR="$BUILD_DIR/node-pause/pause.tar"
NODE_PACKAGES="containerd runc containernetworking-plugins iptables socat"

containerd_fetch() {
  local p missing=()
  for p in $NODE_PACKAGES; do dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } \
      || die "apt-get install ${missing[*]} failed"
  fi
  [[ -s $NODE_PAUSE_TAR && $NODE_PAUSE_TAR -nt $ENV_DIR/node/pause.go ]] && return 0
  local wd="${NODE_PAUSE_TAR%/*}"
  mkdir -p "$wd"
  cp "$ENV_DIR/node/pause.go" "$wd/main.go"
  (
    cd "$wd" || exit 1
    [[ -f go.mod ]] || go mod init local/pause >/dev/null 2>&1
    CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o pause . \
      && python3 "$ENV_DIR/node/oci_image.py" pause.tar.tmp "$NODE_PAUSE_IMAGE" /pause pause=/pause \
      && mv pause.tar.tmp pause.tar
  ) >"$wd/build.log" 2>&1 || { cat "$wd/build.log" >&2; die "building the pause image failed"; }
}

# node_net_up: the bridge and its gateway address, and the iptables rules of the pod network. Also
# called by components that listen on the gateway (Kafka's node listener), so it is idempotent.
#   - pods get no default route (CNI routes only $NODE_POD_CIDR on-link and the service range via the
#     gateway); what comes in from the bridge may only go to the gateway address (INPUT), and nothing
#     is routed from or to the bridge (FORWARD): nothing leaves this host;
#   - the `kubernetes` Service VIP (10.0.0.1:443) is DNATed to the API server's gateway relay;
#   - the kubelet API (10250 on the gateway) refuses pods.
node_net_up() {
  ((EUID == 0)) || die "the real node needs root (network namespaces, cgroups, mounts)"
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$NODE_BRIDGE" type bridge || die "creating bridge $NODE_BRIDGE failed"
  ip -4 addr show dev "$NODE_BRIDGE" | grep -q "inet $NODE_GATEWAY/" \
    || ip addr add "$NODE_GATEWAY/${NODE_POD_CIDR#*/}" dev "$NODE_BRIDGE" || die "adding $NODE_GATEWAY failed"
  ip link set "$NODE_BRIDGE" up
  # Chains of our own, flushed and refilled (idempotent), matched on the bridge interface so that
  # this host's own traffic (the API server dialing the kubelet from 10.232.0.1) is never caught.
  local b=$NODE_BRIDGE t c chain target
  for t in nat:DATAFLOW-NODE filter:DATAFLOW-NODE-IN filter:DATAFLOW-NODE-FWD; do
    iptables -t "${t%%:*}" -N "${t#*:}" 2>/dev/null || true
    iptables -t "${t%%:*}" -F "${t#*:}"
  done
  iptables -t nat -A DATAFLOW-NODE -i "$b" -d "$NODE_SERVICE_VIP" -p tcp --dport 443 \
    -j DNAT --to-destination "$NODE_GATEWAY:$KUBE_APISERVER_PORT"
  iptables -A DATAFLOW-NODE-IN -i "$b" -p tcp --dport 10250 -j REJECT
  iptables -A DATAFLOW-NODE-IN -i "$b" ! -d "$NODE_GATEWAY" -j DROP
  iptables -A DATAFLOW-NODE-FWD -i "$b" ! -o "$b" -j DROP
  iptables -A DATAFLOW-NODE-FWD -o "$b" ! -i "$b" -j DROP
  for c in nat:PREROUTING:DATAFLOW-NODE filter:INPUT:DATAFLOW-NODE-IN filter:FORWARD:DATAFLOW-NODE-FWD; do
    IFS=: read -r t chain target <<<"$c"
    iptables -t "$t" -C "$chain" -j "$target" 2>/dev/null || iptables -t "$t" -I "$chain" -j "$target"
  done
}

node_net_ready() { ip -4 addr show dev "$NODE_BRIDGE" 2>/dev/null | grep -q "inet $NODE_GATEWAY/"; }

containerd_config() {
  local c=$CONTAINERD_CONF nofile hard
  mkdir -p "$c/cni" "$CONTAINERD_DIR"
  hard=$(ulimit -Hn)
  nofile=4096
  [[ $hard != unlimited ]] && ((hard <= nofile)) && nofile=$((hard / 2))
  # The default OCI spec of this containerd, with RLIMIT_NOFILE set explicitly (see the header).
  ctr oci spec | python3 -c '
import json, sys
spec = json.load(sys.stdin)
n = int(sys.argv[1])
spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": n, "soft": n}]
json.dump(spec, sys.stdout, indent=1)' "$nofile" >"$c/base-spec.json" || die "writing the base runtime spec failed"
  cat >"$c/cni/10-dataflow-node.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "dataflow-node",
  "plugins": [{
    "type": "bridge", "bridge": "$NODE_BRIDGE",
    "isGateway": false, "isDefaultGateway": false, "ipMasq": false, "hairpinMode": true,
    "ipam": {
      "type": "host-local", "dataDir": "$CONTAINERD_DIR/cni-ipam",
      "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_GATEWAY", "rangeStart": "${NODE_GATEWAY%.*}.10"}]],
      "routes": [{"dst": "$NODE_SERVICE_CIDR", "gw": "$NODE_GATEWAY"}]
    }
  }]
}
CNI
  cat >"$c/config.toml" <<TOML
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_DIR/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_PAUSE_IMAGE"
  disable_apparmor = true
  enable_selinux = false
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which root lacks here: runc's init would die
  # ("can't get final child's PID from pipe") on the -998 of every sandbox. Clamp to containerd's own.
  restrict_oom_score_adj = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      base_runtime_spec = "$c/base-spec.json"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$c/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
TOML
  # Every registry host resolves to a closed local port: a pod whose image was not imported fails
  # with ErrImagePull naming 127.0.0.1:9 instead of a pull going out to the registry's address.
  mkdir -p "$c/certs.d/_default"
  printf 'server = "http://127.0.0.1:9"\n\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n' \
    >"$c/certs.d/_default/hosts.toml"
}

containerd_start() {
  node_net_up
  containerd_config
  start_bg containerd containerd --config "$CONTAINERD_CONF/config.toml" --log-level warn
}

# Ready = the socket answers and the sandbox image is there (imported on the first start).
containerd_ready() {
  node_ctr version >/dev/null 2>&1 || return 1
  if ! node_ctr images check "name==$NODE_PAUSE_IMAGE" 2>/dev/null | grep -q complete; then
    node_ctr images import --all-platforms "$NODE_PAUSE_TAR" >/dev/null 2>&1 || return 1
  fi
  node_ctr images check "name==$NODE_PAUSE_IMAGE" 2>/dev/null | grep -q complete
}

node_ctr() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# Containers outlive containerd (their shims are their own processes), so stopping the runtime
# first kills every task it runs, then unmounts what the pods left, then stops containerd.
containerd_stop() {
  if node_ctr version >/dev/null 2>&1; then
    local id
    for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    sleep 1
    for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $(node_ctr containers ls -q 2>/dev/null); do node_ctr containers delete "$id" >/dev/null 2>&1 || true; done
  fi
  stop_pid containerd
  local m
  # The kubelet also bind-mounts its root dir onto itself: the dirs themselves, then what is below.
  for m in $(awk -v a="$CONTAINERD_DIR" -v b="$DATA_DIR/kubelet" \
    '$2==a || $2==b || index($2,a"/")==1 || index($2,b"/")==1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  for m in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do ip netns del "$m" 2>/dev/null || true; done
  rm -rf "$CONTAINERD_DIR/cni-ipam"
}

containerd_vars() {
  echo "export CONTAINERD_ADDRESS='$CONTAINERD_SOCK'"
  echo "export CONTAINERD_NAMESPACE=k8s.io"
}
