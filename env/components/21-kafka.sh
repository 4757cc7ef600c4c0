# shellcheck shell=bash
# Apache Kafka in KRaft mode (one combined broker+controller) from Maven Central jars: a small pom
# under build/ copies kafka_2.13 and its runtime dependencies (+ the log4j2 backend Kafka's own
# distribution ships) into a version-keyed lib dir. Listeners, all on 127.0.0.1:
#   PLAINTEXT $KAFKA_PORT, CONTROLLER $KAFKA_CONTROLLER_PORT,
#   SSL $KAFKA_TLS_PORT (test CA; client certificates requested, not required),
#   SASL_PLAINTEXT $KAFKA_SASL_PORT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; one user for all three).
# When the real node's network is up (15-containerd.sh), one more: NODE, plaintext, on the node's
# gateway $NODE_GATEWAY:$KAFKA_NODE_PORT, advertised as such, for pods (a relay cannot serve Kafka:
# clients reconnect to the advertised address, and 127.0.0.1 in a pod is the pod itself).
: "${KAFKA_SASL_USER:=dataflow}" "${KAFKA_SASL_PASSWORD:=dataflow-secret}"
: "${KAFKA_HEAP_OPTS:=-Xms1g -Xmx1g}"
# C1 only: on this 2-core machine, shared with other JVMs, it halves the start (about 8 s instead of
# 15-23 s under load). For throughput benchmarks against the broker, set KAFKA_JVM_OPTS= (empty).
: "${KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=1}"
KAFKA_STORE_PASSWORD=dataflow-store # keystore/truststore password (test material only)
# shellcheck disable=SC2034  # read by envctl
kafka_timeout=120

kafka_lib() { echo "$DL_DIR/kafka-$KAFKA_VERSION-log4j-$KAFKA_LOG4J_VERSION/lib"; }
kafka_java() { if [[ -n ${JAVA17_HOME:-} ]]; then echo "$JAVA17_HOME/bin/java"; else echo java; fi; }

kafka_fetch() {
  local lib; lib=$(kafka_lib)
  [[ -f $lib/.complete ]] && return 0
  local wd="$BUILD_DIR/kafka-$KAFKA_VERSION"
  mkdir -p "$wd"
  cat >"$wd/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.dataflow</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- Kafka 4.x logs through slf4j 1.7; its distribution binds it to log4j2 with log4j-slf4j-impl -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$KAFKA_LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$KAFKA_LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$lib.tmp"
  (cd "$wd" && mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib.tmp" >"$wd/mvn.log" 2>&1) \
    || { tail -n 30 "$wd/mvn.log" >&2; die "maven could not resolve kafka_2.13:$KAFKA_VERSION"; }
  rm -rf "$lib" && mkdir -p "$(dirname "$lib")" && mv "$lib.tmp" "$lib" && touch "$lib/.complete"
}

# kafka_tls: a test CA, a server certificate (127.0.0.1/localhost) and a client certificate;
# PEM for clients, PKCS12 keystore/truststore for the broker. Made once per $CONF_DIR.
kafka_tls() {
  local d=$CONF_DIR/kafka/tls
  [[ -f $d/.complete ]] && return 0
  rm -rf "$d" && mkdir -p "$d"
  (
    set -e
    cd "$d"
    local subj="/O=DataFlow local environment"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "$subj/CN=DataFlow test CA" -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign
    local who
    for who in server client; do
      openssl req -newkey rsa:2048 -nodes -keyout "$who.key" -out "$who.csr" -subj "$subj/CN=dataflow-$who"
    done
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    for who in server client; do
      openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$who.ext" -out "$who.pem"
    done
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name kafka \
      -out server.p12 -passout "pass:$KAFKA_STORE_PASSWORD"
    "$(dirname "$(kafka_java)")/keytool" -importcert -noprompt -alias ca -file ca.pem \
      -keystore truststore.p12 -storetype PKCS12 -storepass "$KAFKA_STORE_PASSWORD"
    rm -f ./*.csr ./*.ext ./*.srl
    chmod 600 ./*.key
  ) >"$CONF_DIR/kafka/tls.log" 2>&1 || { cat "$CONF_DIR/kafka/tls.log" >&2; die "generating Kafka TLS material failed"; }
  touch "$d/.complete"
}

kafka_config() {
  local c=$CONF_DIR/kafka tls=$CONF_DIR/kafka/tls u=$KAFKA_SASL_USER p=$KAFKA_SASL_PASSWORD
  local node_l="" node_m=""
  if node_net_ready; then node_l=",NODE://$NODE_GATEWAY:$KAFKA_NODE_PORT" node_m=",NODE:PLAINTEXT"; fi
  mkdir -p "$c"
  cat >"$c/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SSL://127.0.0.1:$KAFKA_TLS_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT$node_l
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SSL://127.0.0.1:$KAFKA_TLS_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT$node_l
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT$node_m
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA_DIR/kafka

# SSL listener
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/server.p12
ssl.keystore.password=$KAFKA_STORE_PASSWORD
ssl.key.password=$KAFKA_STORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$tls/truststore.p12
ssl.truststore.password=$KAFKA_STORE_PASSWORD
ssl.client.auth=requested

# SASL_PLAINTEXT listener: PLAIN users from JAAS, SCRAM credentials stored in the metadata log
# (written at format time with --add-scram)
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$u="$p";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

# a single test node
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
log.retention.hours=24
log.segment.bytes=67108864
PROPS
  cat >"$c/log4j2.properties" <<'LOG'
status = warn
# keep logging through Kafka's own shutdown hook
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c{1})%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
# start/stop markers
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = info
LOG
}

kafka_cp() { echo "$(kafka_lib)/*"; }

kafka_format() {
  [[ -f $DATA_DIR/kafka/meta.properties ]] && return 0
  local id u=$KAFKA_SASL_USER p=$KAFKA_SASL_PASSWORD
  # URL-safe base64 of 16 random bytes; one in 64 starts with "-", so it goes as --cluster-id=… (a
  # separate argument starting with "-" reads as an option and the format fails).
  id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  mkdir -p "$DATA_DIR/kafka"
  "$(kafka_java)" -Xmx256m -cp "$(kafka_cp)" -Dlog4j2.configurationFile="$CONF_DIR/kafka/log4j2.properties" \
    kafka.tools.StorageTool format --cluster-id="$id" -c "$CONF_DIR/kafka/server.properties" \
    --add-scram "SCRAM-SHA-256=[name=$u,password=$p]" --add-scram "SCRAM-SHA-512=[name=$u,password=$p]" \
    >"$CONF_DIR/kafka/format.log" 2>&1 || { cat "$CONF_DIR/kafka/format.log" >&2; die "formatting the Kafka log dir failed"; }
}

kafka_start() {
  kafka_tls
  kafka_config
  kafka_format
  local opts
  read -r -a opts <<<"$KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS"
  start_bg kafka "$(kafka_java)" "${opts[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$CONF_DIR/kafka/log4j2.properties" \
    -cp "$(kafka_cp)" kafka.Kafka "$CONF_DIR/kafka/server.properties"
}

# Ready = a Metadata request (v4) on the PLAINTEXT listener lists this broker, and the SSL and SASL
# listeners accept connections.
kafka_ready() {
  tcp_open "$KAFKA_TLS_PORT" && tcp_open "$KAFKA_SASL_PORT" || return 1
  python3 - "$KAFKA_PORT" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
client = b"envctl"
req = struct.pack(">hhih", 3, 4, 7, len(client)) + client + struct.pack(">ib", 0, 0)  # no topics, no auto-create
with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
    s.sendall(struct.pack(">i", len(req)) + req)
    def read(n):
        b = b""
        while len(b) < n:
            chunk = s.recv(n - len(b))
            if not chunk:
                raise SystemExit(1)
            b += chunk
        return b
    (size,) = struct.unpack(">i", read(4))
    body = read(size)
corr, _throttle, nbrokers = struct.unpack(">iii", body[:12])
off, ports = 12, []
for _ in range(nbrokers):
    _node, hlen = struct.unpack(">ih", body[off:off + 6]); off += 6 + hlen
    (bport, rlen) = struct.unpack(">ih", body[off:off + 6]); off += 6 + max(rlen, 0)
    ports.append(bport)
sys.exit(0 if corr == 7 and port in ports else 1)
PY
}

kafka_vars() {
  local tls=$CONF_DIR/kafka/tls
  cat <<VARS
export DATAFLOW_KAFKA_BOOTSTRAP='127.0.0.1:$KAFKA_PORT'
export DATAFLOW_KAFKA_TLS_BOOTSTRAP='127.0.0.1:$KAFKA_TLS_PORT'
export DATAFLOW_KAFKA_SASL_BOOTSTRAP='127.0.0.1:$KAFKA_SASL_PORT'
export DATAFLOW_KAFKA_TLS_CA='$tls/ca.pem'
export DATAFLOW_KAFKA_TLS_CERT='$tls/client.pem'
export DATAFLOW_KAFKA_TLS_KEY='$tls/client.key'
export DATAFLOW_KAFKA_SASL_USER='$KAFKA_SASL_USER'
export DATAFLOW_KAFKA_SASL_PASSWORD='$KAFKA_SASL_PASSWORD'
VARS
}
