#!/usr/bin/env bash
# The whole test suite (the README's test command runs this through `make test`).
# Expects the local environment's variables in the environment (`make test` loads them).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --no-deps --no-build-isolation -e ./processor >/dev/null
python -m pytest -p no:cacheprovider processor/tests tests "$@"
