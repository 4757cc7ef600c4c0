"""Durable source positions: one typed record per DataFlow that survives a restart.

Polling sources (PostgreSQL, Trino, Nessie) cannot ask the server where they stopped, the way a
Kafka consumer group can, so they keep their cursor here. The pipeline acknowledges a position
only after every record up to it is written, and the source saves its cursor from ``ack`` — so
the checkpoint never runs ahead of the sink (at least once).

**The record** (:class:`Checkpoint`), stored as the JSON document
``{"source": "<type>", "identity": {…}, "cursor": …, "savedAt": "<RFC 3339>"}``: ``source`` is
the connector type, ``identity`` what the cursor belongs to (table, query, key columns — a source
whose configuration no longer matches it starts afresh), ``cursor`` the position after the last
acknowledged row in the source's own JSON form, ``savedAt`` when it was written. Documents written
by earlier versions (one shape per source) are read into the same record
(:meth:`Checkpoint.from_document`), so an upgrade in place resumes where the old processor stopped.

**The store** comes to a source through its :class:`~.base.ConnectorContext` (``checkpoints``);
the CLI opens it once (:func:`open_checkpoint_store`). A context without one (tests, embedding)
gets the store :func:`open_checkpoint_store` chooses for its DataFlow. First match wins:

1. an explicit directory — the CLI's ``--checkpoint-dir`` (its default: env
   ``DATAFLOW_CHECKPOINT_DIR``): file ``<dir>/<namespace>.<name>.json``, written atomically (temp
   file, fsync, rename);
2. in a cluster (service-account token) or with ``KUBECONFIG``: the ConfigMap
   ``dataflow-<name>-checkpoint`` in the DataFlow's namespace, key ``checkpoint.json``. The
   processor's Role may get, create and patch only that ConfigMap. Writes are rate limited
   (``min_interval``, default 2 s); the last state is always written on ``close``;
3. otherwise a file under ``~/.local/state/dataflow-processor``.

The stores move JSON documents; the record is made and read by :class:`~.polling.PollingSource`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dataflow_processor.connectors.base import CheckpointStore, ConnectorContext

__all__ = ["CheckpointStore"]  # re-exported: the interface lives in base, beside the context carrying it
from dataflow_processor.kube_client import core_api
from dataflow_processor.owned_names import checkpoint_configmap

log = logging.getLogger("dataflow_processor.checkpoint")

CHECKPOINT_DIR_ENV = "DATAFLOW_CHECKPOINT_DIR"
CONFIGMAP_KEY = "checkpoint.json"
DEFAULT_DIR = Path.home() / ".local" / "state" / "dataflow-processor"


def configmap_name(name: str) -> str:
    return checkpoint_configmap(name)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a polling source stopped: the position after its last acknowledged row.

    ``identity`` and ``cursor`` are JSON values of the source's own making; ``saved_at`` is
    RFC 3339 UTC, or ``None`` for a document of an earlier version that did not record it.
    """

    source: str
    identity: Any
    cursor: Any
    saved_at: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {"source": self.source, "identity": self.identity, "cursor": self.cursor, "savedAt": self.saved_at}

    @classmethod
    def from_document(cls, document: Any) -> Checkpoint | None:
        """The record in a stored document, of this version or an earlier one; ``None`` if none is.

        Earlier versions wrote one shape per source; each is mapped to the identity and cursor
        that source now makes for the same configuration (an ambiguous old identity can only fail
        to match, never match another configuration: the source then reads from the start):

        * PostgreSQL ``{"identity": {"source": "postgresql", …}, "cursor": [...], "savedAt"}``;
        * Trino ``{"trino": "<table or query>|<query>|<keyColumn>", "key": k, "keyType": t}``;
        * Nessie ``{"nessie": "<catalog URI>#<namespace>.<table>", "cursor": [seq, file, row]}``.
        """
        if not isinstance(document, dict):
            return None
        if isinstance(document.get("source"), str) and "cursor" in document:
            saved = document.get("savedAt")
            return cls(document["source"], document.get("identity"), document["cursor"], saved)
        if isinstance(document.get("trino"), str) and "key" in document:
            table, _, rest = document["trino"].partition("|")
            query, _, key_column = rest.rpartition("|")
            named = {"table": table, "query": query, "keyColumn": key_column}
            return cls("trino", named, {"key": document["key"], "type": document.get("keyType")})
        if isinstance(document.get("nessie"), str) and "cursor" in document:
            catalog, _, table = document["nessie"].rpartition("#")
            return cls("nessie", {"catalog": catalog, "table": table}, document["cursor"])
        old = document.get("identity")
        if isinstance(old, dict) and old.get("source") == "postgresql" and "cursor" in document:
            rest = {k: v for k, v in old.items() if k != "source"}
            return cls("postgresql", rest, document["cursor"], document.get("savedAt"))
        return None


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


def file_store(directory: str | Path, namespace: str, name: str) -> FileCheckpointStore:
    return FileCheckpointStore(Path(directory) / f"{namespace}.{name}.json")


def open_checkpoint_store(namespace: str, name: str, directory: str | Path | None = None) -> CheckpointStore:
    """The store for this DataFlow, chosen as the module docstring says (``directory`` first)."""
    directory = directory or os.environ.get(CHECKPOINT_DIR_ENV)
    if directory:
        return file_store(directory, namespace, name)
    try:
        api = core_api()
    except Exception as exc:
        log.warning("kubernetes config present but unusable, checkpoint kept in a local file: %s", exc)
        api = None
    if api is not None:
        return ConfigMapCheckpointStore(api, namespace, name)
    return file_store(DEFAULT_DIR, namespace, name)


def checkpoint_store(context: ConnectorContext) -> CheckpointStore:
    """The store of the DataFlow a connector belongs to (one source per DataFlow, so one document):
    the context's, else the one :func:`open_checkpoint_store` chooses."""
    if context.checkpoints is not None:
        return context.checkpoints
    return open_checkpoint_store(context.namespace, context.name)
