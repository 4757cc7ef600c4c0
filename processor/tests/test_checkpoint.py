"""The checkpoint stores without a cluster: the ConfigMap store against a recording fake CoreV1Api,
and which store a DataFlow gets (the context's, else the explicit directory first)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.checkpoint import (
    CONFIGMAP_KEY,
    ConfigMapCheckpointStore,
    FileCheckpointStore,
    checkpoint_store,
    file_store,
    open_checkpoint_store,
)


class FakeConfigMaps:
    """The three CoreV1Api calls the ConfigMap store makes, on a dict."""

    def __init__(self) -> None:
        self.maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []

    def read_namespaced_config_map(self, name: str, namespace: str) -> Any:
        from kubernetes.client.exceptions import ApiException

        self.calls.append("read")
        if (namespace, name) not in self.maps:
            raise ApiException(status=404)
        return type("CM", (), {"data": self.maps[(namespace, name)]["data"]})()

    def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        self.calls.append("patch")
        if (namespace, name) not in self.maps:
            raise ApiException(status=404)
        self.maps[(namespace, name)]["data"].update(body["data"])

    def create_namespaced_config_map(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append("create")
        self.maps[(namespace, body["metadata"]["name"])] = body


async def test_configmap_checkpoint_store_creates_patches_and_rate_limits() -> None:
    api = FakeConfigMaps()
    store = ConfigMapCheckpointStore(api, "shop", "orders", min_interval=60)
    assert await store.load() is None
    await store.save({"cursor": [1]})
    await store.save({"cursor": [2]})  # within min_interval: held back …
    assert json.loads(api.maps[("shop", "dataflow-orders-checkpoint")]["data"][CONFIGMAP_KEY]) == {"cursor": [1]}
    await store.close()  # … and written on close
    assert await store.load() == {"cursor": [2]}
    assert api.calls == ["read", "patch", "create", "patch", "read"]


def test_store_selection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATAFLOW_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    store = open_checkpoint_store("ns", "flow")
    assert isinstance(store, FileCheckpointStore) and store.path == tmp_path / "ns.flow.json"


def test_an_explicit_directory_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATAFLOW_CHECKPOINT_DIR", str(tmp_path / "env"))
    store = open_checkpoint_store("ns", "flow", tmp_path / "flag")
    assert isinstance(store, FileCheckpointStore) and store.path == tmp_path / "flag" / "ns.flow.json"


def test_the_context_carries_the_store(tmp_path: Path) -> None:
    store = file_store(tmp_path, "ns", "flow")
    assert checkpoint_store(ConnectorContext("ns", "flow", "source", checkpoints=store)) is store


async def test_file_store_round_trip(tmp_path: Path) -> None:
    store = file_store(tmp_path / "deep" / "dir", "ns", "flow")
    assert await store.load() is None
    await store.save({"source": "postgresql", "cursor": [1]})
    stored = json.loads((tmp_path / "deep" / "dir" / "ns.flow.json").read_text())
    assert stored == {"source": "postgresql", "cursor": [1]}
    assert not list((tmp_path / "deep" / "dir").glob("*.tmp"))  # written through a temp file, renamed


def test_without_kubernetes_config_there_is_no_client_and_the_store_is_a_local_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataflow_processor import kube_client
    from dataflow_processor.connectors.checkpoint import DEFAULT_DIR

    for name in ("KUBERNETES_SERVICE_HOST", "KUBECONFIG", "DATAFLOW_CHECKPOINT_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert kube_client.core_api() is None and kube_client.custom_objects_api() is None
    store = open_checkpoint_store("ns", "flow")
    assert isinstance(store, FileCheckpointStore) and store.path == DEFAULT_DIR / "ns.flow.json"
