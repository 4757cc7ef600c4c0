"""Status counters on the DataFlow: ``processedCount``, ``errorCount``, ``lastProcessedTime``.

Every ``interval`` seconds (and once at stop) the processor merge-patches them onto
``dataflows/<name>/status`` (group ``dataflow.dataflow.io``, version ``v1``) — only these three
fields, so the operator's ``phase``/``message``/``conditions`` are left alone. Credentials: the
in-cluster service account when ``KUBERNETES_SERVICE_HOST`` and the token file exist, else the file
named by ``KUBECONFIG`` (:mod:`.kube_client`); with neither it is a no-op. The Kubernetes client is synchronous, so each
patch runs in a worker thread; a failed patch is logged and retried at the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from dataflow_processor.kube_client import custom_objects_api
from dataflow_processor.metrics import Metrics

log = logging.getLogger("dataflow_processor.status")

GROUP, VERSION, PLURAL = "dataflow.dataflow.io", "v1", "dataflows"


def kubernetes_api() -> Any | None:
    """A ``CustomObjectsApi`` if Kubernetes config is available, else ``None``."""
    return custom_objects_api()


def status_body(metrics: Metrics) -> dict[str, Any]:
    status: dict[str, Any] = {"processedCount": metrics.processed_total, "errorCount": metrics.errors_total}
    if metrics.last_processed is not None:
        status["lastProcessedTime"] = datetime.fromtimestamp(metrics.last_processed, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"status": status}


class StatusReporter:
    def __init__(
        self, metrics: Metrics, namespace: str, name: str, interval: float = 5.0, api: Any | None = None
    ) -> None:
        self.metrics = metrics
        self.namespace = namespace
        self.name = name
        self.interval = interval
        self.api = api
        self._last: dict[str, Any] | None = None

    @classmethod
    def from_environment(cls, metrics: Metrics, namespace: str, name: str, interval: float = 5.0) -> StatusReporter:
        try:
            api = kubernetes_api()
        except Exception as exc:
            log.warning("kubernetes config present but unusable, status counters disabled: %s", exc)
            api = None
        if api is None:
            log.info("no kubernetes config: status counters are not reported")
        return cls(metrics, namespace, name, interval, api)

    @property
    def enabled(self) -> bool:
        return self.api is not None

    async def report(self) -> None:
        if self.api is None:
            return
        body = status_body(self.metrics)
        if body == self._last:
            return
        try:
            await asyncio.to_thread(
                self.api.patch_namespaced_custom_object_status, GROUP, VERSION, self.namespace, PLURAL, self.name, body
            )
        except Exception as exc:
            log.warning("patching DataFlow status failed: %s", exc)
            return
        self._last = body

    async def run(self) -> None:
        while self.api is not None:
            await asyncio.sleep(self.interval)
            await self.report()
