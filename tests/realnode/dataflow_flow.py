"""One Kafka → PostgreSQL DataFlow served by an in-cluster operator, its processor a real pod on
the real node: shared by the Helm and the kustomize install tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from tests.conftest import require_env
from tests.e2e.conftest import wait_phase
from tests.e2e.kube import apply, get, kubectl, wait_for
from tests.e2e.test_data_path import rows
from tests.integration.conftest import create_topic, produce
from tests.realnode.conftest import RealNode, describe, pods, ready_pod

OWNED = ("deployment/dataflow-{n}", "configmap/dataflow-{n}-spec", "secret/dataflow-{n}-secrets",
         "serviceaccount/dataflow-{n}-processor", "role/dataflow-{n}-processor",
         "rolebinding/dataflow-{n}-processor")


def run_kafka_to_postgres(namespace: str, node: RealNode, image: str) -> dict[str, Any]:
    """Create the DataFlow, check its pod, rows, status and logs, delete it; return the pod seen."""
    host_kafka, host_pg, pod_kafka, pod_pg = require_env(
        "DATAFLOW_KAFKA_BOOTSTRAP", "DATAFLOW_PG_DSN", "DATAFLOW_NODE_KAFKA_BOOTSTRAP", "DATAFLOW_NODE_PG_DSN")
    name = "orders"
    topic, table = f"rn-{uuid.uuid4().hex[:8]}", f"rn_{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(host_kafka, topic))
    # The pod's view of the servers: the node gateway's Kafka listener and PostgreSQL relay.
    apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "conn", "namespace": namespace},
           "stringData": {"dsn": pod_pg, "brokers": pod_kafka}})
    apply({
        "apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"type": "kafka", "kafka": {"brokersSecretRef": {"name": "conn", "key": "brokers"},
                                                  "topic": topic, "consumerGroup": f"rn-{namespace}"}},
            "sink": {"type": "postgresql", "postgresql": {
                "connectionStringSecretRef": {"name": "conn", "key": "dsn"}, "table": table,
                "autoCreateTable": True, "batchSize": 50}},
            **node.scheduling(),
        },
    })
    selector = f"dataflow.dataflow.io/name={name}"
    try:
        wait_phase(namespace, name, "Running", timeout=300)
        pod = wait_for(f"the processor pod Ready on {node.name}", lambda: ready_pod(namespace, selector, node),
                       timeout=300, interval=2)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{describe(namespace)}") from None
    assert pod["spec"]["containers"][0]["image"] == image, pod["spec"]["containers"][0]["image"]
    assert pod["spec"]["serviceAccountName"] == f"dataflow-{name}-processor"

    total = 200
    asyncio.run(produce(host_kafka, topic, [{"id": i, "status": "paid"} for i in range(total)]))
    wait_for(f"{total} rows in {table}", lambda: asyncio.run(rows(host_pg, table)) >= total, timeout=180, interval=1)
    assert asyncio.run(rows(host_pg, table)) == total
    # Only the pod writes processedCount, with the token of the ServiceAccount it runs as.
    df = wait_for("status.processedCount", lambda: (d := get("dataflow", name, namespace))
                  and (d.get("status") or {}).get("processedCount", 0) >= total and d, timeout=120, interval=1)
    assert df["status"]["errorCount"] == 0

    logs = kubectl("logs", "-n", namespace, pod["metadata"]["name"], "-c", "processor")
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert lines, "the processor logged nothing"
    unnamed = [line for line in lines if "dataflow_namespace" not in line or "dataflow_name" not in line]
    assert not unnamed, unnamed[:5]
    assert {(line["dataflow_namespace"], line["dataflow_name"]) for line in lines} == {(namespace, name)}
    assert pod_pg not in logs

    kubectl("delete", "dataflow", name, "-n", namespace, "--wait=true", "--timeout=120s")
    owned = [o.format(n=name).split("/") for o in OWNED]
    left = {f"{kind}/{obj}": get(kind, obj, namespace) for kind, obj in owned}
    assert left == {k: None for k in left}
    wait_for("the processor pod gone", lambda: not pods(namespace, selector), timeout=120, interval=1)
    return pod
