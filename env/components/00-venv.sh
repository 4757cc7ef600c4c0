# shellcheck shell=bash
# The Python virtualenv shared by the tooling (ansible, ansible-runner, molecule), the tests and the
# processor's dependencies. Re-installed only when a requirements file or the lock changes (hash
# stamp). env/constraints.txt, the lock, pins every transitive package too (env/lock.sh writes it);
# the Dockerfile and tests/install/test_wheel.py install with the same file.
venv_requirements() { ls "$ENV_DIR"/requirements-*.txt; }

venv_fetch() {
  local stamp="$VENV_DIR/.requirements.sha256" want
  want=$(cat $(venv_requirements) "$ENV_DIR/constraints.txt" | sha256sum | cut -d' ' -f1)
  if [[ ! -x $VENV_DIR/bin/python ]]; then
    python3.11 -m venv "$VENV_DIR" || die "cannot create venv"
  fi
  if [[ ! -f $stamp || $(<"$stamp") != "$want" ]]; then
    local args=() r
    for r in $(venv_requirements); do args+=(-r "$r"); done
    "$VENV_DIR/bin/pip" install -q --upgrade -c "$ENV_DIR/constraints.txt" pip >&2 || true
    "$VENV_DIR/bin/pip" install -q -c "$ENV_DIR/constraints.txt" "${args[@]}" >&2 || die "pip install failed"
    echo "$want" >"$stamp"
  fi
}

venv_vars() {
  echo "export VIRTUAL_ENV='$VENV_DIR'"
}
