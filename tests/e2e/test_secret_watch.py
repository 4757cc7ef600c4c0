"""The secret watcher's Secret stream, against the real API server: only name and version are kept.

The Secret is written with `kubectl apply`, whose last-applied annotation holds the whole Secret:
even a metadata-only watch delivers the value there, so the watcher keeps nothing but identity.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from typing import Any

import pytest

from tests.e2e.kube import apply, wait_for
from tests.unit.test_secret_watch import watch

pytestmark = pytest.mark.e2e
VALUE = "hunter2-" + uuid.uuid4().hex


def secret(ns: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
            "data": {"dsn": base64.b64encode(value.encode()).decode()}}


def test_secrets_arrive_as_metadata_only(namespace: str) -> None:
    ns = namespace
    apply(secret(ns, VALUE))
    events: list[tuple[str, dict[str, Any]]] = []
    stop, listed = threading.Event(), threading.Event()
    client = watch.kube.KubeClient(timeout=30.0)
    thread = threading.Thread(target=watch.list_and_watch, daemon=True, args=(
        client, f"/api/v1/namespaces/{ns}/secrets", (watch.METADATA_LIST, watch.METADATA_WATCH),
        lambda kind, obj: events.append((kind, obj)), stop, listed, watch.identity))
    thread.start()
    try:
        wait_for("the first list", listed.wait, timeout=30)
        apply(secret(ns, VALUE + "-rotated"))
        wait_for("the change as a watch event", lambda: any(k == "MODIFIED" for k, _ in events), timeout=30)
    finally:
        stop.set()
    kinds = {kind for kind, _ in events}
    assert {"LISTED", "MODIFIED"} <= kinds, kinds
    for _, obj in events:
        assert set(obj) == {"metadata"} and set(obj["metadata"]) == {"namespace", "name", "resourceVersion"}, obj
    text = json.dumps(events)
    assert VALUE not in text and base64.b64encode(VALUE.encode()).decode() not in text


def test_metadata_requests_carry_no_data(namespace: str) -> None:
    ns = namespace
    apply(secret(ns, VALUE))
    client = watch.kube.KubeClient(timeout=30.0)
    page = client.request("GET", f"/api/v1/namespaces/{ns}/secrets", accept=watch.METADATA_LIST)
    assert page["kind"] == "PartialObjectMetadataList"
    assert page["items"] and all("data" not in item for item in page["items"])
