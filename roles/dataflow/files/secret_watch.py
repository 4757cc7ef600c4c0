#!/usr/bin/env python3
"""Reconcile a DataFlow within seconds of a change to a Secret it references.

A referenced Secret is not an object the DataFlow owns, so the runtime does not watch it. Without
this, a rotated password reached the processor only at the next periodic reconcile, which is why
the period used to be 5 minutes (and why an idle operator spent most of its CPU on resyncs). This
program runs beside the runtime (a second container of the operator pod, or a second process):

- it watches DataFlows and keeps, for each Secret of a DataFlow's own namespace, the DataFlows that
  reference it (the role's own `dataflow_secret_refs` decides what a reference is);
- it watches Secrets as metadata only (`PartialObjectMetadata`: no `data`) and keeps of each only
  its namespace, name and resourceVersion (metadata can still carry values: `kubectl apply` copies
  the whole Secret into its last-applied annotation, so annotations and managed fields are dropped
  as each object arrives, and no object is ever logged); when a referenced Secret is created,
  changed or deleted, it sets the annotation
  `dataflow.dataflow.io/secret-observed: <secret>@<resourceVersion>` on each DataFlow that
  references it. The DataFlow watch has `watchAnnotationsChanges: true`, so that annotation starts a
  reconcile, which reads the Secret again and rolls the processor when its resourceVersion moved.

It writes nothing else. Several copies (replicas of the operator) write the same annotation value,
so they agree. Usage: `secret_watch.py [--namespace NS]` (`WATCH_NAMESPACE`, comma-separated, as the
runtime reads it; empty: all namespaces), with the kubeconfig or in-cluster credentials the role's
REST client reads.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROLE = Path(__file__).resolve().parents[1]
ANNOTATION = "dataflow.dataflow.io/secret-observed"
# Secrets are read as metadata only, and only in that form: no fallback to full objects (values).
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
DATAFLOWS = ("apis/dataflow.dataflow.io/v1", "dataflows")
SECRETS = ("api/v1", "secrets")
log = logging.getLogger("secret-watch")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kube = _load("dataflow_kube", ROLE / "module_utils/dataflow_kube.py")
secrets_filter = _load("dataflow_secrets", ROLE / "filter_plugins/dataflow_secrets.py")


class Index:
    """Which DataFlows reference which Secrets, and the Secret versions last seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refs: dict[tuple[str, str], set[str]] = defaultdict(set)  # (ns, secret) -> DataFlow names
        self.by_dataflow: dict[tuple[str, str], set[str]] = {}  # (ns, dataflow) -> secret names
        self.versions: dict[tuple[str, str], str] = {}

    def set_dataflow(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        wanted = {r["name"] for r in secrets_filter.dataflow_secret_refs(obj.get("spec") or {}, ns)
                  if not r["foreign"] and r["name"]}
        with self.lock:
            for secret in self.by_dataflow.get((ns, name), set()) - wanted:
                self.refs[(ns, secret)].discard(name)
            for secret in wanted:
                self.refs[(ns, secret)].add(name)
            self.by_dataflow[(ns, name)] = wanted

    def drop_dataflow(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        with self.lock:
            for secret in self.by_dataflow.pop((ns, name), set()):
                self.refs[(ns, secret)].discard(name)

    def secret_changed(self, ns: str, secret: str, version: str) -> list[str]:
        """The DataFlows to nudge: those referencing a Secret whose version moved."""
        with self.lock:
            before = self.versions.get((ns, secret))
            self.versions[(ns, secret)] = version
            if before == version:
                return []
            return sorted(self.refs.get((ns, secret), ()))


def _collection(api: tuple[str, str], namespace: str) -> str:
    prefix, plural = api
    return f"/{prefix}/namespaces/{namespace}/{plural}" if namespace else f"/{prefix}/{plural}"


def identity(obj: dict[str, Any]) -> dict[str, Any]:
    """Only what identifies an object's version: a Secret's metadata can hold its values."""
    meta = obj.get("metadata") or {}
    return {"metadata": {k: meta[k] for k in ("namespace", "name", "resourceVersion") if k in meta}}


def list_and_watch(client: Any, path: str, accepts: tuple[str | None, str | None],
                   on_event: Callable[[str, dict[str, Any]], None], stop: threading.Event,
                   listed: threading.Event, keep: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> None:
    """List (paginated), then watch from the list's resourceVersion; relist when the watch expires.

    `accepts` are the Accept headers of the list and of the watch (a metadata-only list and watch
    name different kinds). `keep` reduces each object as it arrives. Listed objects come as
    `LISTED` events; `listed` is set once the first list is complete.
    """
    list_accept, watch_accept = accepts
    while not stop.is_set():
        try:
            version = ""
            query: dict[str, str] = {"limit": "500"}
            while True:
                page = client.request("GET", path, query=query, accept=list_accept)
                for item in page.get("items") or []:
                    on_event("LISTED", keep(item))
                version = (page.get("metadata") or {}).get("resourceVersion", "")
                cont = (page.get("metadata") or {}).get("continue")
                if not cont:
                    break
                query = {"limit": "500", "continue": cont}
            listed.set()
            events: Iterator[dict[str, Any]] = client.watch(
                path, {"resourceVersion": version, "allowWatchBookmarks": "true", "timeoutSeconds": "300"},
                accept=watch_accept)
            for event in events:
                kind, obj = event.get("type", ""), keep(event.get("object") or {})
                if kind == "ERROR":  # 410 Gone: the version is too old; list again
                    break
                if kind != "BOOKMARK":
                    on_event(kind, obj)
                if stop.is_set():
                    return
        except kube.KubeError as exc:
            log.warning("watch %s: %s; retrying", path, exc)
            stop.wait(2.0)


class Watcher:
    def __init__(self, client: Any, namespaces: list[str]) -> None:
        self.client = client
        self.namespaces = namespaces or [""]
        self.index = Index()
        self.stop = threading.Event()
        self.dataflows_listed = {ns: threading.Event() for ns in self.namespaces}
        self.secrets_listed = {ns: threading.Event() for ns in self.namespaces}

    def on_dataflow(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.index.drop_dataflow(obj)
        else:
            self.index.set_dataflow(obj)

    def on_secret(self, namespace_scope: str, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        version = "deleted" if kind == "DELETED" else str(meta.get("resourceVersion", ""))
        nudge = self.index.secret_changed(ns, name, version)
        if kind == "LISTED" and not self.secrets_listed[namespace_scope].is_set():
            return  # the first list only records versions: the runtime's own start-up pass covers them
        for dataflow in nudge:
            self.annotate(ns, dataflow, f"{name}@{version}")

    def annotate(self, ns: str, dataflow: str, value: str) -> None:
        path = kube.resource_path("dataflow.dataflow.io/v1", "dataflows", ns, dataflow)
        try:
            self.client.request("PATCH", path, {"metadata": {"annotations": {ANNOTATION: value}}},
                                content_type="application/merge-patch+json")
            log.info("secret %s/%s changed: reconciling DataFlow %s/%s", ns, value.split("@", 1)[0], ns, dataflow)
        except kube.KubeError as exc:
            if exc.status != 404:
                log.warning("annotating DataFlow %s/%s: %s", ns, dataflow, exc.reason)

    def start(self) -> list[threading.Thread]:
        threads = []
        for ns in self.namespaces:
            threads.append(threading.Thread(target=list_and_watch, daemon=True, args=(
                self.client, _collection(DATAFLOWS, ns), (None, None), self.on_dataflow, self.stop,
                self.dataflows_listed[ns])))
            threads[-1].start()
        # DataFlows first: a Secret event must find the references it matters to.
        for ns in self.namespaces:
            self.dataflows_listed[ns].wait()
            threads.append(threading.Thread(target=list_and_watch, daemon=True, args=(
                self.client, _collection(SECRETS, ns), (METADATA_LIST, METADATA_WATCH),
                lambda kind, obj, _ns=ns: self.on_secret(_ns, kind, obj), self.stop, self.secrets_listed[ns],
                identity)))
            threads[-1].start()
        return threads


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), "level": record.levelname.lower(),
                           "logger": record.name, "msg": record.getMessage()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default=os.environ.get("WATCH_NAMESPACE", ""),
                        help="comma-separated namespaces to watch (default: WATCH_NAMESPACE, empty: all)")
    parser.add_argument("--kubeconfig", default=None)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    client = kube.KubeClient(args.kubeconfig, timeout=60.0)
    watcher = Watcher(client, [n.strip() for n in args.namespace.split(",") if n.strip()])
    threads = watcher.start()
    log.info("watching Secrets referenced by DataFlows in %s", args.namespace or "all namespaces")
    try:
        while all(t.is_alive() for t in threads):
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    watcher.stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
