#!/usr/bin/env bash
# The product's main job, locally: bring up the local environment (control plane, Kafka, PostgreSQL),
# start the operator (the real ansible-operator on watches.yaml), apply a Kafka → PostgreSQL DataFlow,
# see it Running, run its processor on the ConfigMap and Secret the operator wrote (no container
# engine here, so the processor runs as a local process), produce records and watch rows arrive.
#   make demo            (DEMO_RECORDS=1000 by default; DEMO_KEEP=1 leaves operator and processor running)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
records=${DEMO_RECORDS:-1000}
ns=demo

env/envctl up venv operator-tools etcd kube-apiserver kube-controller-manager kube-scheduler kwok postgres kafka
eval "$(env/envctl vars)"
python -m pip install -q --no-deps --no-build-isolation -e ./processor >/dev/null
state=$DATAFLOW_ENV_HOME/run/demo
mkdir -p "$state"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
  [[ ${DEMO_KEEP:-0} == 1 ]] && { say "left running: operator (pid $op_pid), processor (pid ${proc_pid:-none})"; return; }
  kill "${proc_pid:-}" "$op_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}

say "CRD and admission policy"
kubectl apply --server-side --force-conflicts -f config/crd/bases/dataflow.dataflow.io_dataflows.yaml >/dev/null
kubectl apply --server-side --force-conflicts -f config/policy/validating-admission-policy.yaml >/dev/null
# Poll rather than `kubectl wait`: on a fresh API server that can fail right after the create.
for _ in $(seq 1 120); do
  [[ $(kubectl get crd dataflows.dataflow.dataflow.io -o jsonpath='{.status.conditions[?(@.type=="Established")].status}') == True ]] && break
  sleep 1
done
kubectl create namespace dataflow-operator-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null

say "operator (log: $state/operator.log)"
ANSIBLE_ROLES_PATH=$repo/roles PROCESSOR_IMAGE=localhost/dataflow-operator:0.1.0 \
  ansible-operator run --watches-file watches.yaml --leader-elect \
  --leader-election-id dataflow-operator.dataflow.io --leader-election-namespace dataflow-operator-system \
  --max-concurrent-reconciles 4 --ansible-verbosity 0 --metrics-bind-address 127.0.0.1:18443 \
  --health-probe-bind-address 127.0.0.1:16789 >"$state/operator.log" 2>&1 &
op_pid=$!
trap cleanup EXIT

say "namespace $ns, credentials Secret, DataFlow orders (Kafka → PostgreSQL)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create secret generic demo-credentials --from-literal=dsn="$DATAFLOW_PG_DSN" \
  --from-literal=brokers="$DATAFLOW_KAFKA_BOOTSTRAP" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
run_id=$(date +%s)
topic="demo-orders-$run_id"
table="demo_orders_$run_id"
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
YAML
# Wait for the operator to have reconciled this very spec (a rerun changes topic and table).
generation=$(kubectl -n "$ns" get dataflow orders -o jsonpath='{.metadata.generation}')
kubectl -n "$ns" wait dataflow/orders --for=jsonpath='{.status.observedGeneration}'="$generation" --timeout=180s >/dev/null
kubectl -n "$ns" wait dataflow/orders --for=jsonpath='{.status.phase}'=Running --timeout=180s
kubectl -n "$ns" get dataflow orders

say "processor, run locally on the ConfigMap and Secret the operator wrote"
kubectl -n "$ns" get configmap dataflow-orders-spec -o jsonpath='{.data.spec\.json}' >"$state/spec.json"
rm -rf "$state/secrets" && mkdir -p "$state/secrets"
python - "$ns" "$state/secrets" <<'PY'
import base64, json, pathlib, subprocess, sys
ns, out = sys.argv[1], pathlib.Path(sys.argv[2])
data = json.loads(subprocess.check_output(["kubectl", "-n", ns, "get", "secret", "dataflow-orders-secrets", "-o", "json"]))["data"]
for key, value in data.items():
    (out / key).write_bytes(base64.b64decode(value))
PY
dataflow-processor --spec-path "$state/spec.json" --secrets-path "$state/secrets" --namespace "$ns" --name orders \
  --health-port 19190 >"$state/processor.log" 2>&1 &
proc_pid=$!

say "producing $records orders (90% paid) into $topic"
python - "$topic" "$records" <<'PY'
import asyncio, json, os, sys
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
async def main(topic: str, n: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=os.environ["DATAFLOW_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
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
for _ in $(seq 1 120); do
  rows=$(psql "$DATAFLOW_PG_DSN" -tAc "SELECT count(*) FROM $table" 2>/dev/null || echo 0)
  printf '\r  rows: %s' "$rows"
  [[ $rows -ge $expected ]] && break
  sleep 1
done
echo
psql "$DATAFLOW_PG_DSN" -c "SELECT * FROM $table ORDER BY id LIMIT 5"
sleep 6  # one status report interval
kubectl -n "$ns" get dataflow orders
[[ $rows -ge $expected ]] || { echo "only $rows of $expected rows arrived (processor log: $state/processor.log)"; exit 1; }
say "done: $rows rows arrived; DataFlow orders is $(kubectl -n "$ns" get dataflow orders -o jsonpath='{.status.phase}')"
