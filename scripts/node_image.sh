#!/usr/bin/env bash
# The operator image on the local environment's real node: build it when its inputs changed
# (scripts/build_image.sh), then import it into the node's containerd unless containerd already holds
# this very build. No registry is involved: the kubelet runs it with imagePullPolicy Never.
#
#   scripts/node_image.sh IMAGE      (expects `envctl vars` in the environment)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
image=${1:?usage: node_image.sh IMAGE}
: "${CONTAINERD_ADDRESS:?run with the variables of env/envctl vars}"
# shellcheck source=../env/lib.sh
. "$repo/env/lib.sh"
# shellcheck source=../env/components/06-image-tools.sh
. "$repo/env/components/06-image-tools.sh"
"$repo/scripts/build_image.sh" "$image"
tar=$IMAGE_DIR/$(printf '%s' "$image" | tr '/:' '__').tar
node_ctr() { ctr --address "$CONTAINERD_ADDRESS" -n k8s.io "$@"; }

# containerd's CRI lists an imported image under its name and under its config digest (the ID podman
# gives the image): the name pointing at the same manifest as that digest means this build is there.
id=$(podman image inspect --format '{{.Id}}' "$image")
digest_of() { node_ctr images ls "name==$1" 2>/dev/null | awk 'NR == 2 {print $3}'; }
named=$(digest_of "$image")
if [[ -n $named && $named == "$(digest_of "sha256:$id")" ]]; then
  log "image $image ($id) is already on the node"
  exit 0
fi
t0=$(date +%s)
node_ctr images import "$tar" >/dev/null
log "image $image imported into the node's containerd in $(( $(date +%s) - t0 ))s"
