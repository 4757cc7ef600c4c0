#!/usr/bin/env bash
# Build the operator image from ./Dockerfile with podman, against the env's local base images, only
# when its inputs changed. `make image IMAGE=…` runs this.
#
#   scripts/build_image.sh IMAGE
#
# Inputs: every file the Dockerfile copies (git's view of the tree: tracked and untracked, not
# ignored), the Dockerfile, and the IDs of the two base images. Their hash is the image's label
# io.dataflow.inputs; when the image in podman's storage carries the same hash (and the saved tar
# below holds it), nothing is built. The image is also saved to
# $DATAFLOW_ENV_HOME/image/<image name with / and : as _>.tar (`podman save`), one tar per image name,
# so that a kubelet's container runtime can import it.
#
# Env: IMAGE_BASE, IMAGE_OPERATOR_BASE (from `envctl vars`; override to build on other bases),
#      PODMAN_BUILD_ARGS (extra `podman build` arguments).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
image=${1:?usage: build_image.sh IMAGE}
# shellcheck source=../env/lib.sh
. "$repo/env/lib.sh"
# shellcheck source=../env/components/06-image-tools.sh
. "$repo/env/components/06-image-tools.sh"
base=${IMAGE_BASE:-$(image_base_ref)}
opbase=${IMAGE_OPERATOR_BASE:-$(image_operator_base_ref)}
for b in "$base" "$opbase"; do
  podman image exists "$b" || die "base image $b is missing: run \`env/envctl fetch image-tools\`"
done
out=$IMAGE_DIR
mkdir -p "$out"
# One tar per image name (slashes and colons made underscores), at a path that does not change.
tar_path=$out/$(printf '%s' "$image" | tr '/:' '__').tar

# The files the Dockerfile copies, hashed by content, plus the bases' IDs.
inputs=(Dockerfile .dockerignore env/constraints.txt requirements.yml scripts/install_collections.py
        processor/pyproject.toml processor/README.md processor/src watches.yaml roles playbooks config/policy)
hash=$(
  cd "$repo"
  {
    git ls-files -z --cached --others --exclude-standard -- "${inputs[@]}" | sort -z | xargs -0 sha256sum
    podman image inspect --format '{{.Id}}' "$base" "$opbase"
  } | sha256sum | cut -c1-16
)
# What the saved tar holds: "<image> <inputs hash>".
marker=$tar_path.inputs

have=$(podman image inspect --format '{{index .Labels "io.dataflow.inputs"}}' "$image" 2>/dev/null || true)
if [[ $have == "$hash" && -s $tar_path && -f $marker && $(<"$marker") == "$image $hash" ]]; then
  log "image $image is current (inputs $hash)"
  exit 0
fi

# Pip inside the build reaches the package index the way the host's pip does: the host's index
# settings and CA bundle go in as build secrets (mounted for the RUN steps only, never in a layer).
secrets=()
pipdir=$(mktemp -d)
trap 'rm -rf "$pipdir"' EXIT
python3 "$repo/scripts/pip_build_config.py" "$pipdir"
[[ -f $pipdir/pip.conf ]] && secrets+=(--secret "id=pip-conf,src=$pipdir/pip.conf")
[[ -f $pipdir/pip-ca ]] && secrets+=(--secret "id=pip-ca,src=$pipdir/pip-ca")

t0=$(date +%s)
# shellcheck disable=SC2086
podman build --isolation chroot --pull=never \
  --build-arg "BASE=$base" --build-arg "OPERATOR_BASE=$opbase" \
  --label "io.dataflow.inputs=$hash" "${secrets[@]}" ${PODMAN_BUILD_ARGS:-} \
  -t "$image" "$repo" >&2
log "image $image built in $(( $(date +%s) - t0 ))s (inputs $hash)"
# Earlier builds that lost their tag to this one would pile up (700 MB each): drop those.
podman image prune -f --filter label=io.dataflow.inputs >/dev/null || true
rm -f "$tar_path.tmp.$$"
podman save --quiet --format docker-archive -o "$tar_path.tmp.$$" "$image"
mv "$tar_path.tmp.$$" "$tar_path"
echo "$image $hash" >"$marker"
log "saved to $tar_path ($(du -h "$tar_path" | cut -f1)); image size $(podman image inspect --format '{{.Size}}' "$image") bytes"
