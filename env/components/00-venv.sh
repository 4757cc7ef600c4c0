# shellcheck shell=bash
# The Python virtualenv shared by the tooling (ansible, ansible-runner, molecule), the tests and the
# processor's dependencies. Re-installed only when a requirements file changes (hash stamp).
venv_requirements() { ls "$ENV_DIR"/requirements-*.txt; }

venv_fetch() {
  local stamp="$VENV_DIR/.requirements.sha256" want
  want=$(cat $(venv_requirements) | sha256sum | cut -d' ' -f1)
  if [[ ! -x $VENV_DIR/bin/python ]]; then
    python3.11 -m venv "$VENV_DIR" || die "cannot create venv"
  fi
  if [[ ! -f $stamp || $(<"$stamp") != "$want" ]]; then
    local args=() r
    for r in $(venv_requirements); do args+=(-r "$r"); done
    "$VENV_DIR/bin/pip" install -q --upgrade pip==25.3 >&2 || true
    "$VENV_DIR/bin/pip" install -q "${args[@]}" >&2 || die "pip install failed"
    echo "$want" >"$stamp"
  fi
}

venv_vars() {
  echo "export VIRTUAL_ENV='$VENV_DIR'"
}
