# shellcheck shell=bash
# What `make image` needs, made locally (no container registry is reachable here):
#   podman, mmdebstrap   from Debian's packages (installed with apt-get when missing)
#   localhost/dataflow-base:bookworm-<hash>
#                        a Debian 12 rootfs made with mmdebstrap: the Dockerfile's BASE. It already
#                        holds the packages the Dockerfile would apt-get, so builds need no Debian index.
#   localhost/ansible-operator-bin:v<version>
#                        a one-file image with /usr/local/bin/ansible-operator built by operator-tools:
#                        the Dockerfile's OPERATOR_BASE (users get the upstream ansible-operator image).
# Podman runs here with --isolation chroot for builds and --runtime runc for containers: crun refuses
# this machine's hybrid cgroup v1 hierarchy (docs/image.md).
IMAGE_TOOLS_DEBS=(podman mmdebstrap runc containernetworking-plugins)
IMAGE_BASE_PACKAGES=python3,python3-venv,tini,ca-certificates
IMAGE_BASE_SUITE=bookworm
IMAGE_DIR=$DATAFLOW_ENV_HOME/image

# image_base_ref / image_operator_base_ref: the local base images' names. The base's tag carries a
# hash of how it is made, so changing the package list makes a new one.
image_base_ref() {
  echo "localhost/dataflow-base:$IMAGE_BASE_SUITE-$(printf '%s\n' "$IMAGE_BASE_SUITE" "$IMAGE_BASE_PACKAGES" | sha256sum | cut -c1-12)"
}
image_operator_base_ref() { echo "localhost/ansible-operator-bin:v$ANSIBLE_OPERATOR_VERSION"; }

image_tools_debs() {
  local missing=() p
  for p in "${IMAGE_TOOLS_DEBS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "image-tools: apt-get install ${missing[*]}"
  (
    flock 9
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
      || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
  ) 9>"$IMAGE_DIR/.apt.lock" || die "apt-get install ${missing[*]} failed"
}

image_tools_fetch() {
  mkdir -p "$IMAGE_DIR"
  image_tools_debs
  local base; base=$(image_base_ref)
  if ! podman image exists "$base"; then
    local tar="$IMAGE_DIR/${base##*:}.tar"
    if [[ ! -f $tar || ! -s $tar ]]; then
      log "image-tools: mmdebstrap $IMAGE_BASE_SUITE ($IMAGE_BASE_PACKAGES)"
      # --format=tar: mmdebstrap picks the output format from the name's extension, and a `.tmp.N`
      # name would otherwise make it write a directory.
      rm -rf "$tar"  # a directory left by such an older run
      mmdebstrap --quiet --variant=minbase --format=tar --include="$IMAGE_BASE_PACKAGES" "$IMAGE_BASE_SUITE" \
        "$tar.tmp.$$" >&2 || { rm -rf "$tar.tmp.$$"; die "mmdebstrap failed"; }
      mv "$tar.tmp.$$" "$tar"
    fi
    podman import --quiet "$tar" "$base" >/dev/null || die "podman import $tar failed"
  fi
  local opbase; opbase=$(image_operator_base_ref)
  if ! podman image exists "$opbase"; then
    operator_tools_fetch
    local root; root=$(mktemp -d "$IMAGE_DIR/.opbase.XXXXXX")
    install -D -m 0755 "$BIN_DIR/ansible-operator-$ANSIBLE_OPERATOR_VERSION" "$root/usr/local/bin/ansible-operator"
    tar -C "$root" -cf "$root.tar" usr
    podman import --quiet "$root.tar" "$opbase" >/dev/null || die "podman import of ansible-operator failed"
    rm -rf "$root" "$root.tar"
  fi
}

image_tools_vars() {
  echo "export IMAGE_BASE='$(image_base_ref)'"
  echo "export IMAGE_OPERATOR_BASE='$(image_operator_base_ref)'"
}
