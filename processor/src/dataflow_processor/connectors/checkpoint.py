"""Durable source positions: a small JSON document per DataFlow that survives a restart.

Polling sources (PostgreSQL, later Trino and Nessie) cannot ask the server where they stopped, the
way a Kafka consumer group can, so they keep their cursor here. The pipeline acknowledges a
position only after every record up to it is written, and the source saves its cursor from
``ack`` — so the checkpoint never runs ahead of the sink (at least once).

Where the document lives (:func:`open_checkpoint_store`), first match wins:

1. an explicit directory — env ``DATAFLOW_CHECKPOINT_DIR`` (the CLI's ``--checkpoint-dir`` sets
   it): file ``<dir>/<namespace>.<name>.json``, written atomically (temp file, fsync, rename);
2. in a cluster (service-account token) or with ``KUBECONFIG``: the ConfigMap
   ``dataflow-<name>-checkpoint`` in the DataFlow's namespace, key ``checkpoint.json``. The
   processor's Role may get, create and patch only that ConfigMap. Writes are rate limited
   (``min_interval``, default 2 s); the last state is always written on ``close``;
3. otherwise a file under ``~/.local/state/dataflow-processor``.

The document is opaque to the store: each source puts what it needs (mode, columns, cursor) and
decides itself whether a stored document still fits its configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import orjson

from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.owned_names import checkpoint_configmap

log = logging.getLogger("dataflow_processor.checkpoint")

CHECKPOINT_DIR_ENV = "DATAFLOW_CHECKPOINT_DIR"
CONFIGMAP_KEY = "checkpoint.json"
TOKEN_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
DEFAULT_DIR = Path.home() / ".local" / "state" / "dataflow-processor"


def configmap_name(name: str) -> str:
    return checkpoint_configmap(name)


class CheckpointStore(ABC):
    """Load and save one JSON document."""

    where: str = ""

    @abstractmethod
    async def load(self) -> dict[str, Any] | None: ...

    @abstractmethod
    async def save(self, state: dict[str, Any]) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional
        """Write what a rate limit held back."""


class FileCheckpointStore(CheckpointStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    async def load(self) -> dict[str, Any] | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        state = orjson.loads(data)
        return state if isinstance(state, dict) else None

    async def save(self, state: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write, orjson.dumps(state))

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class ConfigMapCheckpointStore(CheckpointStore):
    """The ConfigMap ``dataflow-<name>-checkpoint``; the synchronous client runs in a thread."""

    def __init__(self, api: Any, namespace: str, name: str, min_interval: float = 2.0) -> None:
        self.api = api
        self.namespace = namespace
        self.name = configmap_name(name)
        self.where = f"configmap {namespace}/{self.name}"
        self.min_interval = min_interval
        self._last_write = 0.0
        self._held: dict[str, Any] | None = None

    async def load(self) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._read)

    def _read(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            cm = self.api.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        text = (cm.data or {}).get(CONFIGMAP_KEY)
        if not text:
            return None
        state = orjson.loads(text)
        return state if isinstance(state, dict) else None

    async def save(self, state: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_write < self.min_interval:
            self._held = state
            return
        self._held = None
        await asyncio.to_thread(self._write, orjson.dumps(state).decode())
        self._last_write = time.monotonic()

    async def close(self) -> None:
        if self._held is not None:
            state, self._held = self._held, None
            await asyncio.to_thread(self._write, orjson.dumps(state).decode())

    def _write(self, text: str) -> None:
        from kubernetes.client.exceptions import ApiException

        body = {"data": {CONFIGMAP_KEY: text}}
        try:
            self.api.patch_namespaced_config_map(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "dataflow-processor"},
                },
                "data": {CONFIGMAP_KEY: text},
            }
            self.api.create_namespaced_config_map(self.namespace, manifest)


def _core_api() -> Any | None:
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and TOKEN_FILE.exists()
    kubeconfig = os.environ.get("KUBECONFIG")
    if not in_cluster and not kubeconfig:
        return None
    from kubernetes import client, config

    if in_cluster:
        config.load_incluster_config()
    else:
        config.load_kube_config(config_file=kubeconfig)
    return client.CoreV1Api()


def file_store(directory: str | Path, namespace: str, name: str) -> FileCheckpointStore:
    return FileCheckpointStore(Path(directory) / f"{namespace}.{name}.json")


def open_checkpoint_store(namespace: str, name: str) -> CheckpointStore:
    """The store for this DataFlow, chosen as the module docstring says."""
    directory = os.environ.get(CHECKPOINT_DIR_ENV)
    if directory:
        return file_store(directory, namespace, name)
    try:
        api = _core_api()
    except Exception as exc:
        log.warning("kubernetes config present but unusable, checkpoint kept in a local file: %s", exc)
        api = None
    if api is not None:
        return ConfigMapCheckpointStore(api, namespace, name)
    return file_store(DEFAULT_DIR, namespace, name)


def checkpoint_store(context: ConnectorContext) -> CheckpointStore:
    """The store of the DataFlow a connector belongs to (one source per DataFlow, so one document)."""
    return open_checkpoint_store(context.namespace, context.name)
