"""No secret value in the processor's output: the real CLI run as a subprocess (debug logging, every
library's logger on), its stdout and stderr searched for every value of the mounted Secret.

Run 1: a Kafka source whose topic comes from the Secret (logged at subscribe) into a PostgreSQL sink
whose DSN has a password with ``#`` — asyncpg's parser then quotes a piece of the password in its
error, and the connect fails. Run 2: a Trino source whose ``serverURL`` carries ``user:password@``
and whose basic-auth password is a secret, against a port nothing listens on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import unique

pytestmark = pytest.mark.integration

SRC = Path(__file__).resolve().parents[2] / "processor" / "src"


def run_processor(spec: dict[str, Any], secrets: dict[str, str], workdir: Path) -> tuple[int, str]:
    """Run the CLI to its end (a failing connect ends it); return its exit code and all its output."""
    (workdir / "spec.json").write_text(json.dumps(spec))
    mount = workdir / "secrets"  # the Secret as Kubernetes mounts it: one file per key
    mount.mkdir()
    for key, value in secrets.items():
        (mount / key).write_text(value)
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "K8S_AUTH_KUBECONFIG"}}
    env.update(LOG_LEVEL="debug", PYTHONPATH=str(SRC), PYTHONWARNINGS="always")
    proc = subprocess.run(
        [sys.executable, "-m", "dataflow_processor", "run", "--spec-path", str(workdir / "spec.json"),
         "--namespace", "it", "--name", unique("redact"), "--health-port", "0",
         "--secrets-path", str(mount), "--checkpoint-dir", str(workdir / "checkpoints")],
        capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


def leaked(output: str, secrets: dict[str, str], fragments: list[str]) -> list[str]:
    return [text for text in [*secrets.values(), *fragments] if text in output]


def test_no_secret_in_output_of_a_failing_postgres_connect(bootstrap: str, tmp_path: Path) -> None:
    secrets = {
        "source.kafka.topic": unique("secret-topic"),
        "sink.postgresql.connectionString": "postgres://dataflow:s3cr#etPassw0rd@127.0.0.1:5432/dataflow",
    }
    spec = {
        "source": {"type": "kafka", "kafka": {"brokers": [bootstrap], "topicSecretRef": {"name": "s", "key": "t"}}},
        "sink": {
            "type": "postgresql",
            "postgresql": {"connectionStringSecretRef": {"name": "s", "key": "dsn"}, "table": "t"},
        },
    }
    code, output = run_processor(spec, secrets, tmp_path)
    assert leaked(output, secrets, ["s3cr", "etPassw0rd"]) == [], output
    assert code == 1, output
    assert "cannot connect to PostgreSQL (sink)" in output, output
    assert "kafka source subscribed to ***" in output, output  # the topic was logged, masked


def test_no_secret_in_output_of_a_failing_trino_connect(tmp_path: Path) -> None:
    secrets = {
        "source.trino.serverURL": "http://alice:Url-Passw0rd@127.0.0.1:9",  # discard port: refused
        "source.trino.basicAuth.password": "Basic-Passw0rd",
    }
    spec = {
        "source": {
            "type": "trino",
            "trino": {
                "serverURLSecretRef": {"name": "s", "key": "url"},
                "catalog": "memory",
                "schema": "default",
                "table": "items",
                "basicAuth": {"username": "alice", "passwordSecretRef": {"name": "s", "key": "pw"}},
            },
        },
        "sink": {"type": "kafka", "kafka": {"brokers": ["127.0.0.1:9"], "topic": "unused"}},
    }
    code, output = run_processor(spec, secrets, tmp_path)
    assert leaked(output, secrets, ["Url-Passw0rd", "alice:Url"]) == [], output
    assert code == 1, output
    assert "credentials are sent over plain http to http://***@127.0.0.1:9" in output, output
    assert "cannot connect to Trino (source)" in output, output
