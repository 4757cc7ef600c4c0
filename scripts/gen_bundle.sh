#!/usr/bin/env bash
# Regenerate the OLM bundle (bundle/, bundle.Dockerfile) from config/manifests with operator-sdk,
# offline. `tests/install/test_bundle.py` regenerates into a temp dir and fails on drift.
#   scripts/gen_bundle.sh [OUTPUT_DIR]   (default: the repository root)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo}
version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$repo/charts/dataflow-operator/Chart.yaml")
mkdir -p "$out"
cd "$out"
kubectl kustomize "$repo/config/manifests" |
  operator-sdk generate bundle -q --overwrite --version "$version" --package dataflow-operator \
    --channels alpha --default-channel alpha --output-dir bundle >/dev/null
# operator-sdk writes bundle.Dockerfile into the working directory; keep its scorecard copy in bundle/.
mkdir -p bundle/tests/scorecard
cp "$repo/config/scorecard/config.yaml" bundle/tests/scorecard/config.yaml
