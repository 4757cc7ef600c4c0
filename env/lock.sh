#!/usr/bin/env bash
# Rewrite env/constraints.txt, the lock: a fresh venv gets env/requirements-*.txt (and nothing else),
# then its `pip freeze --all` becomes the lock. Run after changing a requirements file; commit both.
set -euo pipefail
env_dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/venv"
args=()
for r in "$env_dir"/requirements-*.txt; do args+=(-r "$r"); done
"$tmp/venv/bin/pip" install -q "${args[@]}"
{
  awk '/^#/ {print; next} {exit}' "$env_dir/constraints.txt"
  "$tmp/venv/bin/pip" freeze --all --exclude-editable
} >"$tmp/constraints.txt"
mv "$tmp/constraints.txt" "$env_dir/constraints.txt"
echo "env/constraints.txt: $(grep -c '==' "$env_dir/constraints.txt") packages"
