"""watches.yaml: what the runtime may hand the role, and from whom."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WATCHES = yaml.safe_load((REPO / "watches.yaml").read_text())


def test_every_watch_marks_its_object_unsafe() -> None:
    # Without markUnsafe the runtime passes the object as trusted extra-vars, and any `{{ … }}` in a
    # field is evaluated as a template by the first task that reads it.
    assert WATCHES and all(w.get("markUnsafe") is True for w in WATCHES), WATCHES


def test_only_dataflows_are_watched() -> None:
    # Objects anyone may create elsewhere (a Deployment with the operator's labels, in any namespace)
    # must not trigger a playbook: the processor image comes from the operator's own environment.
    assert [(w["group"], w["kind"]) for w in WATCHES] == [("dataflow.dataflow.io", "DataFlow")]
    assert not list((REPO / "playbooks").glob("rollout*"))
