"""Shared pytest layer: every endpoint of the local environment comes from the environment.

`make -s env-vars` prints the variables (the Makefile's `test` target loads them). A test asks for a
component through a fixture below; when the variable is missing the test is skipped on a developer's
machine, but under ``CI=true`` it **fails**: in CI a missing server is a broken environment, never a
reason to pass quietly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_env(*names: str) -> list[str]:
    """Return the values of `names`; fail (CI) or skip (locally) when one is unset."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        msg = f"local environment not loaded: {', '.join(missing)} unset (run `make env-up`)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return [os.environ[n] for n in names]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        msg = f"tool {name!r} not on PATH (run `make env-up`)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@dataclass(frozen=True)
class S3Store:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    bucket: str


@dataclass(frozen=True)
class Nessie:
    url: str  # base URL, e.g. http://127.0.0.1:19120
    iceberg_url: str  # Iceberg REST catalog base, e.g. http://127.0.0.1:19120/iceberg
    warehouse: str


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    (path,) = require_env("KUBECONFIG")
    return path


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    (v,) = require_env("DATAFLOW_KAFKA_BOOTSTRAP")
    return v


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    (v,) = require_env("DATAFLOW_PG_DSN")
    return v


@pytest.fixture(scope="session")
def trino_url() -> str:
    (v,) = require_env("DATAFLOW_TRINO_URL")
    return v


@pytest.fixture(scope="session")
def trino_catalog() -> str:
    """A writable catalog of the local Trino (`memory`)."""
    (v,) = require_env("DATAFLOW_TRINO_CATALOG")
    return v


@pytest.fixture(scope="session")
def s3_store() -> S3Store:
    e, a, s, r, b = require_env(
        "DATAFLOW_S3_ENDPOINT",
        "DATAFLOW_S3_ACCESS_KEY",
        "DATAFLOW_S3_SECRET_KEY",
        "DATAFLOW_S3_REGION",
        "DATAFLOW_S3_BUCKET",
    )
    return S3Store(e, a, s, r, b)


@pytest.fixture(scope="session")
def nessie() -> Nessie:
    u, i, w = require_env("DATAFLOW_NESSIE_URL", "DATAFLOW_NESSIE_ICEBERG_URL", "DATAFLOW_NESSIE_WAREHOUSE")
    return Nessie(u, i, w)


@dataclass(frozen=True)
class KafkaTLS:
    bootstrap: str  # SSL listener, host:port
    ca: str  # PEM file of the test CA that signed the broker's certificate
    cert: str  # PEM client certificate (the broker requests one, does not require it)
    key: str  # PEM private key of the client certificate


@dataclass(frozen=True)
class KafkaSASL:
    bootstrap: str  # SASL_PLAINTEXT listener, host:port
    user: str  # valid for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
    password: str


@pytest.fixture(scope="session")
def kafka_tls() -> KafkaTLS:
    b, ca, cert, key = require_env(
        "DATAFLOW_KAFKA_TLS_BOOTSTRAP", "DATAFLOW_KAFKA_TLS_CA", "DATAFLOW_KAFKA_TLS_CERT", "DATAFLOW_KAFKA_TLS_KEY"
    )
    return KafkaTLS(b, ca, cert, key)


@pytest.fixture(scope="session")
def kafka_sasl() -> KafkaSASL:
    b, u, p = require_env("DATAFLOW_KAFKA_SASL_BOOTSTRAP", "DATAFLOW_KAFKA_SASL_USER", "DATAFLOW_KAFKA_SASL_PASSWORD")
    return KafkaSASL(b, u, p)


@pytest.fixture(scope="session")
def crd_installed(kubeconfig: str) -> str:
    """The DataFlow CRD on the local control plane (e2e, install and admission suites)."""
    install_crd()
    return kubeconfig


def install_crd(timeout: float = 180) -> None:
    """Apply the CRD and wait until it is Established (polling: on a fresh API server `kubectl wait`
    right after the create can fail at once)."""
    import subprocess
    import time

    crd = REPO / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml"
    proc = subprocess.run(["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(crd)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = subprocess.run(
            ["kubectl", "get", "crd", "dataflows.dataflow.dataflow.io",
             "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}"],
            capture_output=True, text=True, timeout=30).stdout
        if status == "True":
            return
        time.sleep(1)
    raise AssertionError("the DataFlow CRD was not Established in time")


@pytest.fixture(autouse=True)
def _tidy_after_each_test() -> Iterator[None]:
    """Run finalizers now, not in the middle of pytest's own work.

    A client left unclosed by a failing test (an aiokafka producer, say) logs from `__del__` when the
    garbage collector reaches it; if that happens while pytest compiles source to report a failure,
    CPython 3.11 aborts the whole run (AST recursion-depth SystemError). Handlers that in-process CLI
    tests attached to pytest's capture streams are dropped once those streams are closed.
    """
    yield
    import gc
    import logging

    gc.collect()
    root = logging.getLogger()
    for handler in list(root.handlers):
        stream = getattr(handler, "stream", None)
        if stream is not None and getattr(stream, "closed", False):
            root.removeHandler(handler)
