"""Reading a spec file (JSON or YAML, bare spec or whole DataFlow object) into ``DataFlowSpec``.

Every problem is reported as ``spec.<field path>: <message>``, one per line, so a user sees which
field of the manifest to fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dataflow_processor.redaction import register_secrets
from dataflow_processor.spec.dataflow import DataFlowSpec
from dataflow_processor.spec.secrets import (
    SecretMergeError,
    merge_secret_values,
    read_secret_values,
    unresolved_secret_refs,
)


class SpecError(ValueError):
    """The spec is invalid; ``problems`` lists ``path: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid DataFlow spec:\n  " + "\n  ".join(problems))
        self.problems = problems


def read_spec_document(path: str | Path) -> dict[str, Any]:
    """Load the document; a full DataFlow object (apiVersion/kind/spec) is unwrapped to its spec."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpecError([f"{path}: neither JSON nor YAML: {exc}"]) from exc
    if not isinstance(doc, dict):
        raise SpecError([f"{path}: expected an object"])
    if "spec" in doc and ("kind" in doc or "apiVersion" in doc):
        doc = doc["spec"]
        if not isinstance(doc, dict):
            raise SpecError(["spec: expected an object"])
    return doc


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(["spec", *(str(part) for part in loc)])


def parse_spec(doc: dict[str, Any]) -> DataFlowSpec:
    """Validate a raw spec dict; raise :class:`SpecError` naming each bad field."""
    try:
        return DataFlowSpec.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append(f"{_format_loc(err['loc'])}: {message}")
        raise SpecError(problems) from exc


def load_spec(
    spec_path: str | Path, secrets_path: str | Path | None = None, *, require_resolved: bool = True
) -> DataFlowSpec:
    """Read the spec, merge the mounted secret values, validate; optionally require every ref resolved."""
    doc = read_spec_document(spec_path)
    if secrets_path is not None:
        try:
            values = read_secret_values(secrets_path)
            # before anything can log them: from here on every log line masks these values
            register_secrets(values.values())
            doc = merge_secret_values(doc, values)
        except SecretMergeError as exc:
            raise SpecError([str(exc)]) from exc
    spec = parse_spec(doc)
    if require_resolved:
        problems = unresolved_secret_refs(spec)
        if problems:
            raise SpecError(problems)
    return spec
