# shellcheck shell=bash
# Prometheus and promtool, for the monitoring tests (tests/monitoring): the chart's alert rules are
# checked and unit-tested with promtool, and a real Prometheus scrapes a real processor to evaluate
# every dashboard query. Debian 12's package (2.42); installed with apt-get when missing, under the
# same lock as image-tools' packages. A tool: the tests start their own Prometheus on a free port.
# The package's service is never started here (policy-rc.d on these machines; nothing runs it).
prometheus_fetch() {
  if ! dpkg -s prometheus >/dev/null 2>&1; then
    mkdir -p "$DATAFLOW_ENV_HOME/image"
    log "prometheus: apt-get install prometheus"
    (
      flock 9
      dpkg -s prometheus >/dev/null 2>&1 && exit 0
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >&2 \
        || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >&2; }
    ) 9>"$DATAFLOW_ENV_HOME/image/.apt.lock" || die "apt-get install prometheus failed"
  fi
  local have; have=$(dpkg-query -W -f '${Version}' prometheus)
  [[ $have == "$PROMETHEUS_VERSION"+* ]] || die "prometheus $have installed, env/versions.env pins $PROMETHEUS_VERSION"
}

prometheus_vars() {
  echo "export PROMETHEUS_BIN=/usr/bin/prometheus"
  echo "export PROMTOOL_BIN=/usr/bin/promtool"
}
