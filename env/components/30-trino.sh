# shellcheck shell=bash
# Trino coordinator (single node, also a worker) on Java 25, with a `memory` catalog.
#
# The registry here serves no packaged server (trino-server / trino-server-core tarballs and
# trino-server-main are refused), so the server is assembled from Maven jars:
#   lib/              io.trino:trino-main:$TRINO_VERSION with its runtime dependencies, versions aligned
#                     on trino-root's dependencyManagement (what the real server ships), plus a
#                     one-class launcher jar (what trino-server-main's TrinoServer does: new Server().start)
#   plugin/<name>/    io.trino:trino-<name>:$TRINO_VERSION + its runtime dependencies, minus what the
#                     server provides to plugins (trino-spi, slice, jackson-annotations, opentelemetry
#                     api/context), plus the META-INF/services entry the published jar lacks
# Everything lives in $BUILD_DIR/trino-$TRINO_VERSION (a new version builds next to the old one).
# shellcheck disable=SC2034  # read by envctl
trino_timeout=240
TRINO_PLUGINS=(memory)
TRINO_HOME=$BUILD_DIR/trino-$TRINO_VERSION
TRINO_MVN_DEP=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
TRINO_PROVIDED=trino-spi,slice,jackson-annotations,opentelemetry-api,opentelemetry-context

trino_java() {
  [[ -x $JAVA25_HOME/bin/java ]] || die "trino needs Java 25 (JAVA25_HOME=${JAVA25_HOME:-unset})"
  echo "$JAVA25_HOME/bin/$1"
}

# trino_pom DIR ARTIFACT: a pom depending on io.trino:ARTIFACT, managed by trino-root's versions.
trino_pom() {
  mkdir -p "$1"
  cat >"$1/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.dataflow</groupId>
  <artifactId>trino-assembly-$2</artifactId>
  <version>$TRINO_VERSION</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>io.trino</groupId><artifactId>trino-root</artifactId><version>$TRINO_VERSION</version>
        <type>pom</type><scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency><groupId>io.trino</groupId><artifactId>$2</artifactId><version>$TRINO_VERSION</version></dependency>
  </dependencies>
</project>
POM
}

# trino_copy_deps POMDIR OUTDIR [EXCLUDED_ARTIFACT_IDS]: resolve the runtime closure into OUTDIR.
trino_copy_deps() {
  local out=$2
  rm -rf "$out.tmp"
  (cd "$1" && mvn -q -B -Dstyle.color=never "$TRINO_MVN_DEP:copy-dependencies" -DincludeScope=runtime \
      -DexcludeArtifactIds="${3:-}" -DoutputDirectory="$out.tmp" >"$1/mvn.log" 2>&1) \
    || { tail -n 20 "$1/mvn.log" >&2; rm -rf "$out.tmp"; die "maven could not resolve $(basename "$1") (log: $1/mvn.log)"; }
}

trino_fetch_server() {
  local lib=$TRINO_HOME/lib src=$TRINO_HOME/launcher
  [[ -f $lib/.complete ]] && return 0
  trino_pom "$TRINO_HOME/poms/server" trino-main
  trino_copy_deps "$TRINO_HOME/poms/server" "$lib"
  mkdir -p "$src/local/dataflow"
  cat >"$src/local/dataflow/TrinoMain.java" <<'JAVA'
package local.dataflow;

import io.trino.server.Server;

/** What io.trino.server.TrinoServer (trino-server-main, not served here) does. */
public final class TrinoMain {
    private TrinoMain() {}

    public static void main(String[] args) {
        String version = Server.class.getPackage().getImplementationVersion();
        new Server().start(version == null ? "unknown" : version);
    }
}
JAVA
  rm -rf "$src/classes"
  if ! "$(trino_java javac)" -nowarn -d "$src/classes" -cp "$lib.tmp/*" "$src/local/dataflow/TrinoMain.java" >&2 \
    || ! "$(trino_java jar)" cf "$lib.tmp/dataflow-trino-main.jar" -C "$src/classes" .; then
    die "building the trino launcher class failed"
  fi
  rm -rf "$lib" && mv "$lib.tmp" "$lib" && touch "$lib/.complete"
}

# The published plugin jars carry no META-INF/services/io.trino.spi.Plugin (the plugin packaging adds
# it): find the class implementing io.trino.spi.Plugin and add a jar declaring it.
trino_plugin_services() {
  local dir=$1 name=$2 jar cls found=
  jar="$dir/trino-$name-$TRINO_VERSION.jar"
  unzip -p "$jar" META-INF/services/io.trino.spi.Plugin >/dev/null 2>&1 && return 0
  for cls in $(unzip -Z1 "$jar" | grep -E '^io/trino/plugin/.*Plugin\.class$' | sed 's/\.class$//; s#/#.#g'); do
    if "$(trino_java javap)" -cp "$jar:$TRINO_HOME/lib/*" "$cls" 2>/dev/null | grep -q 'implements .*io\.trino\.spi\.Plugin\b'; then
      found=$cls; break
    fi
  done
  [[ -n $found ]] || die "no io.trino.spi.Plugin implementation in $jar"
  local svc; svc=$(mktemp -d)
  mkdir -p "$svc/META-INF/services" && echo "$found" >"$svc/META-INF/services/io.trino.spi.Plugin"
  "$(trino_java jar)" cf "$dir/dataflow-plugin-services.jar" -C "$svc" META-INF
  rm -rf "$svc"
}

trino_fetch_plugin() {
  local name=$1 dir=$TRINO_HOME/plugin/$1
  [[ -f $dir/.complete ]] && return 0
  trino_pom "$TRINO_HOME/poms/plugin-$name" "trino-$name"
  trino_copy_deps "$TRINO_HOME/poms/plugin-$name" "$dir" "$TRINO_PROVIDED"
  trino_plugin_services "$dir.tmp" "$name"
  rm -rf "$dir" && mv "$dir.tmp" "$dir" && touch "$dir/.complete"
}

trino_fetch() {
  local p
  trino_java java >/dev/null
  trino_fetch_server
  for p in "${TRINO_PLUGINS[@]}"; do trino_fetch_plugin "$p"; done
}

trino_config() {
  local conf=$CONF_DIR/trino
  mkdir -p "$conf/catalog" "$DATA_DIR/trino"
  cat >"$conf/config.properties" <<EOF
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$TRINO_PORT
discovery.uri=http://127.0.0.1:$TRINO_PORT
query.max-memory=1GB
query.max-memory-per-node=512MB
http-server.log.enabled=false
web-ui.enabled=false
EOF
  cat >"$conf/node.properties" <<EOF
node.environment=dataflow
node.id=dataflow-local
node.data-dir=$DATA_DIR/trino
node.bind-ip=127.0.0.1
node.internal-address=127.0.0.1
EOF
  # Quieter than the default: no 500-line property table per start, no memory-poll warnings while
  # the node is still starting.
  cat >"$conf/log.properties" <<EOF
io.trino=INFO
io.trino.bootstrap=WARN
io.trino.memory.RemoteNodeMemory=ERROR
EOF
  cat >"$conf/catalog/memory.properties" <<EOF
connector.name=memory
memory.max-data-per-node=128MB
EOF
  # What the launcher would pass: jvm.config, node.properties as -D, config, log levels, paths.
  cat >"$conf/jvm.config" <<EOF
-Xmx2G
-XX:+UseG1GC
-XX:TieredStopAtLevel=1
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:+EnableDynamicAgentLoading
-Djdk.attach.allowAttachSelf=true
-Dfile.encoding=UTF-8
--add-modules=jdk.incubator.vector
--enable-native-access=ALL-UNNAMED
--sun-misc-unsafe-memory-access=allow
EOF
}

trino_start() {
  trino_config
  local conf=$CONF_DIR/trino args=() line
  while IFS= read -r line; do [[ -n $line ]] && args+=("$line"); done <"$conf/jvm.config"
  while IFS= read -r line; do [[ $line == *=* ]] && args+=("-D$line"); done <"$conf/node.properties"
  # Console logging into the component log (NO_COLOR: plain text), working directory = data dir.
  start_bg trino env -C "$DATA_DIR/trino" NO_COLOR=1 "$(trino_java java)" -cp "$TRINO_HOME/lib/*" "${args[@]}" \
    -Dconfig="$conf/config.properties" -Dlog.levels-file="$conf/log.properties" \
    -Dcatalog.config-dir="$conf/catalog" -Dplugin.dir="$TRINO_HOME/plugin" \
    local.dataflow.TrinoMain
}

# Ready = /v1/info says it finished starting and `SELECT 1` returns a row through the REST protocol.
trino_ready() {
  curl -fsS --max-time 3 "http://127.0.0.1:$TRINO_PORT/v1/info" 2>/dev/null | grep -q '"starting":false' || return 1
  python3 - "http://127.0.0.1:$TRINO_PORT" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
req = urllib.request.Request(base + "/v1/statement", data=b"SELECT 1", method="POST",
                             headers={"X-Trino-User": "envctl"})
doc = json.load(urllib.request.urlopen(req, timeout=5))
rows = []
deadline = time.time() + 20
while True:
    rows += doc.get("data", [])
    if "error" in doc or "nextUri" not in doc or time.time() > deadline:
        break
    doc = json.load(urllib.request.urlopen(doc["nextUri"], timeout=5))
sys.exit(0 if rows == [[1]] else 1)
PY
}

trino_vars() {
  cat <<VARS
export DATAFLOW_TRINO_URL='http://127.0.0.1:$TRINO_PORT'
export DATAFLOW_TRINO_CATALOG='memory'
VARS
}
