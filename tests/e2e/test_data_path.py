"""The data path end to end: the operator writes the ConfigMap and Secret, the processor runs on
exactly those (as the pod would mount them) against the real Kafka and PostgreSQL, records arrive,
and the DataFlow's status counters grow. No container can run here, so the processor is a process."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import require_env
from tests.e2e.conftest import wait_phase
from tests.e2e.kube import apply, get, wait_for
from tests.e2e.operator_process import OperatorProcess, free_port
from tests.e2e.test_operator import secret
from tests.integration.conftest import create_topic, produce

pytestmark = pytest.mark.e2e


def mounted_files(namespace: str, name: str, root: Path) -> tuple[Path, Path]:
    """What the pod would see: /etc/dataflow/spec.json and /etc/dataflow-secrets/<key>."""
    cm = get("configmap", f"dataflow-{name}-spec", namespace)
    sec = get("secret", f"dataflow-{name}-secrets", namespace)
    assert cm and sec
    spec = root / "spec.json"
    spec.write_text(cm["data"]["spec.json"])
    secrets = root / "secrets"
    secrets.mkdir()
    for key, value in sec["data"].items():
        (secrets / key).write_bytes(base64.b64decode(value))
    return spec, secrets


async def rows(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1)", table)
        return int(await conn.fetchval(f'SELECT count(*) FROM "{table}"')) if exists else 0
    finally:
        await conn.close()


def test_operator_spec_runs_the_processor(operator: OperatorProcess, namespace: str, tmp_path: Path) -> None:
    bootstrap, dsn = require_env("DATAFLOW_KAFKA_BOOTSTRAP", "DATAFLOW_PG_DSN")
    topic, table = f"e2e-{uuid.uuid4().hex[:8]}", f"e2e_{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(bootstrap, topic))
    apply(secret("conn", namespace, {"dsn": dsn, "brokers": bootstrap}))
    apply({
        "apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
        "metadata": {"name": "orders", "namespace": namespace},
        "spec": {
            "source": {"type": "kafka", "kafka": {"brokersSecretRef": {"name": "conn", "key": "brokers"},
                                                  "topic": topic, "consumerGroup": f"e2e-{namespace}"}},
            "transformations": [
                {"type": "timestamp", "timestamp": {"fieldName": "ingested_at"}},
                {"type": "filter", "filter": {"condition": "$.status == 'paid'"}},
            ],
            "sink": {"type": "postgresql", "postgresql": {
                "connectionStringSecretRef": {"name": "conn", "key": "dsn"}, "table": table,
                "autoCreateTable": True, "batchSize": 100}},
        },
    })
    wait_phase(namespace, "orders", "Running")
    spec, secrets = mounted_files(namespace, "orders", tmp_path)
    assert dsn not in spec.read_text()

    env = dict(os.environ, DATAFLOW_CHECKPOINT_DIR=str(tmp_path / "checkpoints"), STATUS_INTERVAL_SECONDS="1")
    log = (tmp_path / "processor.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataflow_processor", "--spec-path", str(spec), "--secrets-path", str(secrets),
         "--namespace", namespace, "--name", "orders", "--health-port", str(free_port())],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        total, paid = 500, 450
        asyncio.run(produce(bootstrap, topic, [{"id": i, "status": "paid" if i % 10 else "cancelled"}
                                               for i in range(total)]))
        wait_for(f"{paid} rows in {table}", lambda: asyncio.run(rows(dsn, table)) >= paid, timeout=120, interval=1)
        assert asyncio.run(rows(dsn, table)) == paid
        df = wait_for("status counters", lambda: (d := get("dataflow", "orders", namespace))
                      and (d.get("status") or {}).get("processedCount", 0) >= paid and d, timeout=60)
        assert df["status"]["errorCount"] == 0
        assert df["status"]["lastProcessedTime"]
        assert df["status"]["phase"] == "Running"  # the operator's fields are untouched by the processor
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "processor.log").read_text()[-3000:]
    assert dsn not in (tmp_path / "processor.log").read_text()
