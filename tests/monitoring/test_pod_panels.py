"""The dashboard's pod panels (CPU, memory) on the real kubelet's container metrics: a processor pod on the real node,
made from the role's own templates (Deployment → ReplicaSet → Pod, the pod name and labels the
operator gives it), moving Kafka → PostgreSQL; a real Prometheus scrapes the pod on its `http` port
and the node's kubelet on /metrics/resource, and the panel queries must return this pod's
container with values inside what its cgroup allows.

No operator runs: the objects are applied by the test (without the owner reference to a DataFlow,
which the garbage collector would act on), so nothing here reconciles other suites' DataFlows.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient

from tests.conftest import require_env
from tests.e2e.kube import apply, kubectl, wait_for
from tests.integration.conftest import create_topic, produce
from tests.monitoring.coverage import POD_PANELS
from tests.monitoring.prometheus_process import Prometheus, running_prometheus
from tests.realnode.conftest import RealNode, describe, node_image, ready_pod, real_node

pytestmark = [pytest.mark.realnode, pytest.mark.integration]
__all__ = ["node_image", "real_node"]  # fixtures of the real-node suite, used here

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles/dataflow"
MONITORING = REPO / "charts/dataflow-operator/files/monitoring"
NAME = "orders"
RECORDS = 2000
LIMITS = {"cpu": 0.5, "memory": 512 * 2**20}  # the role's default limits (defaults/main.yml)


def render_objects(namespace: str, spec: dict[str, Any], image: str) -> list[dict[str, Any]]:
    """roles/dataflow/templates/objects.yaml.j2 with the role's defaults, as the operator renders it."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import add_all_plugin_dirs, init_plugin_loader
    from ansible.template import Templar

    init_plugin_loader()
    add_all_plugin_dirs(str(ROLE))
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    variables = {
        **{k: v for k, v in defaults.items() if "lookup(" not in str(v)},
        "dataflow_processor_log_level": "info", "dataflow_name": NAME, "dataflow_namespace": namespace,
        "dataflow_uid": "00000000-0000-0000-0000-000000000000", "dataflow_spec": spec, "dataflow_secret_data": {},
        "dataflow_spec_hash": "monitoring", "dataflow_image": image,
    }
    source = (ROLE / "templates/objects.yaml.j2").read_text()
    docs = [d for d in yaml.safe_load_all(Templar(loader=DataLoader(), variables=variables).template(source)) if d]
    for d in docs:
        d["metadata"].pop("ownerReferences", None)
    return docs


@pytest.fixture
def namespace() -> Iterator[str]:
    ns = f"mon-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_cpu_and_memory_panels_on_a_processor_pod(
    namespace: str, real_node: RealNode, node_image: str, tmp_path: Path
) -> None:
    host_kafka, host_pg, pod_kafka, pod_pg = require_env(
        "DATAFLOW_KAFKA_BOOTSTRAP", "DATAFLOW_PG_DSN", "DATAFLOW_NODE_KAFKA_BOOTSTRAP", "DATAFLOW_NODE_PG_DSN")
    topic, table = f"mon-{uuid.uuid4().hex[:8]}", f"mon_{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(host_kafka, topic))
    try:
        measure_pod_panels(namespace, real_node, node_image, tmp_path, host_kafka, pod_kafka, pod_pg, topic, table)
    finally:
        kubectl("delete", "deployment", f"dataflow-{NAME}", "-n", namespace, "--wait=true", check=False,
                timeout=120)
        asyncio.run(drop(host_kafka, host_pg, topic, table))


async def drop(bootstrap: str, dsn: str, topic: str, table: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    finally:
        await conn.close()


def measure_pod_panels(namespace: str, real_node: RealNode, node_image: str, tmp_path: Path, host_kafka: str,
                       pod_kafka: str, pod_pg: str, topic: str, table: str) -> None:
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [pod_kafka], "topic": topic, "consumerGroup": topic}},
        "sink": {"type": "postgresql", "postgresql": {"connectionString": pod_pg, "table": table,
                                                      "autoCreateTable": True}},
        **real_node.scheduling(),
    }
    for obj in render_objects(namespace, spec, node_image):
        apply(obj)
    selector = f"dataflow.dataflow.io/name={NAME}"
    try:
        pod = wait_for(f"the processor pod Ready on {real_node.name}",
                       lambda: ready_pod(namespace, selector, real_node), timeout=300, interval=2)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{describe(namespace)}") from None
    pod_name, pod_ip = pod["metadata"]["name"], pod["status"]["podIP"]
    port = pod["spec"]["containers"][0]["ports"][0]
    # the PodMonitor (chart and config/prometheus alike) selects this pod, names this port, and takes
    # its job from the pod's app label
    monitor = yaml.safe_load((REPO / "config/prometheus/podmonitor.yaml").read_text())["spec"]
    assert monitor["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert port["name"] == monitor["podMetricsEndpoints"][0]["port"] == "http"
    assert pod["metadata"]["labels"][monitor["jobLabel"]] == "dataflow-processor"

    jobs: list[dict[str, Any]] = [
        {"job_name": "dataflow-processor",
         "static_configs": [{"targets": [f"{pod_ip}:{port['containerPort']}"],
                             "labels": {"namespace": namespace, "pod": pod_name, "container": "processor"}}]},
        # The kubelet's resource metrics (kube-prometheus-stack: kubelet.serviceMonitor.resource), the same
        # series names as its cAdvisor endpoint. Here /metrics/cadvisor labels only pod cgroups: the
        # kubelet's cAdvisor finds containers through containerd's default socket, and this
        # environment's containerd listens on its own (docs/local-environment/real-node.md).
        {"job_name": "kubelet", "scheme": "https", "metrics_path": "/metrics/resource", "honor_labels": True,
         "tls_config": {"insecure_skip_verify": True},  # the kubelet's CA-signed cert names no IP SAN here
         "static_configs": [{"targets": [f"{real_node.gateway}:10250"]}]},
    ]
    board = json.loads((MONITORING / "dataflow-dashboard.json").read_text())
    panels = {p["title"]: p for p in board["panels"] if p["title"] in POD_PANELS}
    assert set(panels) == POD_PANELS
    with running_prometheus(tmp_path, jobs) as prom:
        asyncio.run(produce(host_kafka, topic, [{"id": i, "kind": "keep"} for i in range(RECORDS)]))
        # the pod did the work: its own counters, scraped on its port, say every record was written
        written = f'sum(dataflow_connector_messages_written_total{{job="dataflow-processor", namespace="{namespace}"}})'
        wait_for(f"{RECORDS} records written by the pod",
                 lambda: list(prom.query(written, time.time()).values()) == [RECORDS], timeout=120, interval=1)
        # the kubelet refreshes container stats every 10-15 s: a rate needs two of them
        values = wait_for("the kubelet's series of the processor container",
                          lambda: evaluate(prom, panels, namespace), timeout=120, interval=2)
    print(json.dumps(values, indent=2))  # the values the closing note lists
    cpu, memory = values["Processor CPU"], values["Processor memory"]
    assert list(cpu) == list(memory) == [f"{namespace}/{pod_name}"]
    # plainly wrong would be: nothing, no CPU at all, more than the cgroup allows (2,000 records cost
    # this processor a few hundredths of a CPU-second: over 30 s that is about 0.001 cores)
    assert 0 < cpu[f"{namespace}/{pod_name}"] <= LIMITS["cpu"] * 1.1, cpu
    assert 20 * 2**20 < memory[f"{namespace}/{pod_name}"] <= LIMITS["memory"], memory


def evaluate(prom: Prometheus, panels: dict[str, Any], namespace: str) -> dict[str, dict[str, float]] | None:
    """Each pod panel's query with the dashboard's variables set; None until each has a series."""
    out = {}
    for title, panel in panels.items():
        (target,) = panel["targets"]
        expr = target["expr"].replace("$namespace", namespace).replace("$dataflow", NAME)
        got = prom.query(expr.replace("$__rate_interval", "30s"), time.time())
        if not got:
            return None
        out[title] = {f"{dict(k)['namespace']}/{dict(k)['pod']}": v for k, v in got.items()}
    return out
