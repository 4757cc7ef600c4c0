#!/usr/bin/env bash
# The product's main job, locally, the way a user runs it: bring up the local environment (control
# plane, a real node with containerd, Kafka, PostgreSQL), build the operator image and load it onto the
# node, `helm install` the operator, apply a Kafka → PostgreSQL DataFlow, and watch its processor pod
# move records into rows. Operator and processor run as pods from the image (docs/image.md); the
# node reaches Kafka and PostgreSQL through its gateway (docs/local-environment/real-node.md).
#   make demo     (DEMO_RECORDS=1000 by default; DEMO_KEEP=1 leaves the operator and the DataFlow running)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
records=${DEMO_RECORDS:-1000}
ns=demo                 # the DataFlow's namespace
ops=dataflow-demo       # the operator's namespace
release=demo

env/envctl up venv operator-tools image-tools etcd kube-apiserver kube-controller-manager kube-scheduler \
  containerd kubelet node-relay postgres kafka
eval "$(env/envctl vars)"
state=$DATAFLOW_ENV_HOME/run/demo
mkdir -p "$state"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
diagnose() {
  say "the demo failed; what the cluster shows"
  kubectl get pods -A -o wide 2>&1 | grep -E "^(NAMESPACE|$ns|$ops) " || true
  kubectl -n "$ns" get events --sort-by=.lastTimestamp 2>&1 | tail -15 || true
  kubectl -n "$ops" logs "deployment/$release-dataflow-operator" -c manager --tail=40 2>&1 || true
  kubectl -n "$ns" logs -l dataflow.dataflow.io/name=orders --tail=20 2>&1 || true
}
cleanup() {
  local rc=$?
  [[ $rc == 0 ]] || diagnose
  if [[ ${DEMO_KEEP:-0} == 1 ]]; then
    say "left running: operator (helm release $release in $ops), DataFlow $ns/orders"
    return
  fi
  # The DataFlow first, while its operator still runs: its finalizer needs it.
  kubectl -n "$ns" delete dataflow orders --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  helm uninstall "$release" -n "$ops" --wait >/dev/null 2>&1 || true
}
restricted_namespace() {
  kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label --overwrite namespace "$1" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest >/dev/null
}

say "operator image $DATAFLOW_IMAGE, built if its inputs changed, loaded onto node $DATAFLOW_NODE_NAME"
scripts/node_image.sh "$DATAFLOW_IMAGE"

say "helm install $release (namespace $ops), serving namespace $ns"
trap cleanup EXIT
# Helm installs the CRD only when it is absent; an upgrade of the CRD is a kubectl apply.
kubectl apply --server-side --force-conflicts -f config/crd/bases/dataflow.dataflow.io_dataflows.yaml >/dev/null
# The admission policy is the chart's: one created by `kubectl apply` elsewhere would block the install.
owner=$(kubectl get validatingadmissionpolicy dataflow.dataflow.io \
  -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}' 2>/dev/null || true)
[[ $owner == "$release" ]] || kubectl delete validatingadmissionpolicybinding,validatingadmissionpolicy \
  dataflow.dataflow.io --ignore-not-found >/dev/null
restricted_namespace "$ops"
restricted_namespace "$ns"
# The node is tainted so that only pods meant for it land there (the rest go to kwok's fake node):
# the operator and the DataFlow both select it and tolerate the taint.
cat >"$state/values.yaml" <<YAML
image: {repository: ${DATAFLOW_IMAGE%:*}, tag: "${DATAFLOW_IMAGE##*:}", pullPolicy: Never}
watchNamespaces: [$ns]
nodeSelector: {$DATAFLOW_NODE_LABEL: "true"}
tolerations: [{key: $DATAFLOW_NODE_TAINT, operator: Exists, effect: NoSchedule}]
YAML
helm upgrade --install "$release" charts/dataflow-operator -n "$ops" -f "$state/values.yaml" --wait --timeout 5m >/dev/null
kubectl -n "$ops" get pods -o wide

say "namespace $ns: credentials Secret and DataFlow orders (Kafka → PostgreSQL)"
# The processor pod's view of the servers: the node gateway's Kafka listener and PostgreSQL relay.
kubectl -n "$ns" create secret generic demo-credentials --from-literal=dsn="$DATAFLOW_NODE_PG_DSN" \
  --from-literal=brokers="$DATAFLOW_NODE_KAFKA_BOOTSTRAP" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
run_id=$(date +%s)
topic="demo-orders-$run_id"
table="demo_orders_$run_id"
python - "$topic" <<'PY'
import asyncio, os, sys
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
async def main(topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=os.environ["DATAFLOW_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
asyncio.run(main(sys.argv[1]))
PY
kubectl apply -f - <<YAML
apiVersion: dataflow.dataflow.io/v1
kind: DataFlow
metadata: {name: orders, namespace: $ns}
spec:
  source: {type: kafka, kafka: {brokersSecretRef: {name: demo-credentials, key: brokers}, topic: $topic, consumerGroup: demo}}
  transformations:
    - {type: timestamp, timestamp: {fieldName: ingested_at}}
    - {type: filter, filter: {condition: "\$.status == 'paid'"}}
    - {type: select, select: {fields: [id, status, amount, ingested_at]}}
  sink: {type: postgresql, postgresql: {connectionStringSecretRef: {name: demo-credentials, key: dsn}, table: $table, autoCreateTable: true, batchSize: 500}}
  nodeSelector: {$DATAFLOW_NODE_LABEL: "true"}
  tolerations: [{key: $DATAFLOW_NODE_TAINT, operator: Exists, effect: NoSchedule}]
YAML
# Wait for the operator to have reconciled this very spec (a rerun changes topic and table).
generation=$(kubectl -n "$ns" get dataflow orders -o jsonpath='{.metadata.generation}')
kubectl -n "$ns" wait dataflow/orders --for=jsonpath='{.status.observedGeneration}'="$generation" --timeout=180s >/dev/null
kubectl -n "$ns" wait dataflow/orders --for=jsonpath='{.status.phase}'=Running --timeout=180s

say "processor pod, Ready by its own probes"
# Poll: right after the Deployment is made there may be no pod yet for `kubectl wait` to find, and a
# rerun's previous pod may still be terminating.
ready=""
for _ in $(seq 1 150); do
  ready=$(kubectl -n "$ns" get pods -l dataflow.dataflow.io/name=orders -o json | python -c '
import json, sys
for pod in json.load(sys.stdin)["items"]:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    if conditions.get("Ready") == "True" and not pod["metadata"].get("deletionTimestamp"):
        print(pod["metadata"]["name"])
        break
')
  [[ -n $ready ]] && break
  sleep 2
done
[[ -n $ready ]] || { echo "the processor pod did not become Ready"; exit 1; }
kubectl -n "$ns" get pods -o wide

say "producing $records orders (90% paid) into $topic"
python - "$topic" "$records" <<'PY'
import asyncio, json, os, sys
from aiokafka import AIOKafkaProducer
async def main(topic: str, n: int) -> None:
    p = AIOKafkaProducer(bootstrap_servers=os.environ["DATAFLOW_KAFKA_BOOTSTRAP"], linger_ms=20)
    await p.start()
    try:
        for i in range(n):
            status = "paid" if i % 10 else "cancelled"
            await p.send(topic, json.dumps({"id": i, "status": status, "amount": i * 1.5, "note": "x"}).encode())
        await p.flush()
    finally:
        await p.stop()
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
PY

expected=$((records - (records + 9) / 10))
say "waiting for $expected rows in $table"
rows=0
for _ in $(seq 1 120); do
  rows=$(psql "$DATAFLOW_PG_DSN" -tAc "SELECT count(*) FROM $table" 2>/dev/null || echo 0)
  printf '\r  rows: %s' "$rows"
  [[ $rows -ge $expected ]] && break
  sleep 1
done
echo
psql "$DATAFLOW_PG_DSN" -c "SELECT * FROM $table ORDER BY id LIMIT 5"
[[ $rows -ge $expected ]] || { echo "only $rows of $expected rows arrived"; exit 1; }
# The pod reports its counters to the DataFlow's status, with its own ServiceAccount's token.
for _ in $(seq 1 30); do
  [[ $(kubectl -n "$ns" get dataflow orders -o jsonpath='{.status.processedCount}') -ge $expected ]] && break
  sleep 1
done
kubectl -n "$ns" get dataflow orders
say "the processor's last log lines (kubectl logs)"
kubectl -n "$ns" logs "$ready" -c processor --tail=3
say "done: $rows rows arrived; DataFlow orders is $(kubectl -n "$ns" get dataflow orders -o jsonpath='{.status.phase}')"
