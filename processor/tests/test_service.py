"""Health endpoints, status reporting and JSON logs."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest

from dataflow_processor.connectors.memory import MemorySink
from dataflow_processor.health import HealthServer
from dataflow_processor.logging_json import JsonFormatter, level_from_env
from dataflow_processor.metrics import Metrics
from dataflow_processor.pipeline import SinkTarget
from dataflow_processor.status import StatusReporter, status_body

MAIN_SINK = SinkTarget("sink", "default", MemorySink(), "postgresql")


async def test_health_endpoints() -> None:
    metrics = Metrics("shop", "orders")
    metrics.written(MAIN_SINK, 3)
    ready = {"value": False}
    server = HealthServer(metrics, lambda: ready["value"], host="127.0.0.1", port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/livez") as resp:
                assert resp.status == 200
            async with session.get(f"{base}/readyz") as resp:
                assert resp.status == 503
            ready["value"] = True
            async with session.get(f"{base}/readyz") as resp:
                assert resp.status == 200
            async with session.get(f"{base}/metrics") as resp:
                text = await resp.text()
                assert resp.status == 200
                assert (
                    'dataflow_messages_sent_total{name="orders",namespace="shop",route="default",'
                    'sink_type="postgresql"} 3.0' in text
                )
    finally:
        await server.stop()


def test_status_is_a_noop_without_kubernetes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    reporter = StatusReporter.from_environment(Metrics("a", "b"), "a", "b")
    assert not reporter.enabled
    asyncio.run(reporter.report())


async def test_status_patches_only_the_counters() -> None:
    calls: list[tuple[Any, ...]] = []

    class FakeApi:
        def patch_namespaced_custom_object_status(self, *args: Any) -> None:
            calls.append(args)

    metrics = Metrics("shop", "orders")
    reporter = StatusReporter(metrics, "shop", "orders", api=FakeApi())
    metrics.written(MAIN_SINK, 5)
    metrics.failed("parse", "invalid_data", 2)
    await reporter.report()
    await reporter.report()  # unchanged → not patched again
    assert len(calls) == 1
    group, version, namespace, plural, name, body = calls[0]
    assert (group, version, namespace, plural, name) == ("dataflow.dataflow.io", "v1", "shop", "dataflows", "orders")
    assert body["status"]["processedCount"] == 5 and body["status"]["errorCount"] == 2
    assert set(body["status"]) == {"processedCount", "errorCount", "lastProcessedTime"}
    assert status_body(Metrics("a", "b")) == {"status": {"processedCount": 0, "errorCount": 0}}


def test_json_log_lines_carry_the_dataflow() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("now",), None)
    record.stage = "parse"
    line = json.loads(JsonFormatter("shop", "orders").format(record))
    assert line["dataflow_namespace"] == "shop" and line["dataflow_name"] == "orders"
    assert (line["msg"], line["level"], line["stage"]) == ("failed now", "error", "parse")
    assert level_from_env("warn") == logging.WARNING and level_from_env(None) == logging.INFO
