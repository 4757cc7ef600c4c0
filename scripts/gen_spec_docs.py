#!/usr/bin/env python3
"""Write docs/spec-reference.md and the field tables of docs/connectors/*.md.

Both come from the one declaration: the reference from the generated CRD (so it shows exactly what
`kubectl explain dataflow.spec` shows), the connector tables from the spec models' fields
(description, default, bounds; `spec/catalog.py` names each connector's configs). A table sits
between `<!-- generated: fields <type> <sides> -->` and `<!-- end generated -->`, where `<sides>`
is `common`, `source` or `sink` (fields only that side uses), or several joined by `+`; the prose
around it is the page's own.

`tests/unit/test_generated_copies.py` fails when a page is stale.
"""

from __future__ import annotations

import re
import sys
import typing
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_crd  # the CRD's node shapes; it also puts the processor's spec on the path
from dataflow_processor.spec.catalog import CONNECTOR_BY_TYPE
from dataflow_processor.spec.common import SpecModel, secret_marker, side_of, twin_of
from pydantic import BaseModel
from pydantic.fields import FieldInfo

REPO = Path(__file__).resolve().parent.parent
CRD = REPO / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml"
OUT = REPO / "docs/spec-reference.md"
CONNECTOR_DOCS = REPO / "docs/connectors"
# Blocks documented once, then referred to.
SHARED = {"kafka", "postgresql", "trino", "nessie", "config"}
DASH = "\N{EN DASH}"  # "no default" in a table, and a range
TABLE = re.compile(r"(<!-- generated: fields (\S+) (\S+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def kind(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    t = node.get("type", "any")
    if t == "array":
        return f"list of {kind(node.get('items', {}))}"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    return str(t)


def rows(node: dict[str, Any], path: str, out: list[str], depth: int = 0) -> None:
    required = set(node.get("required", []))
    for name, child in (node.get("properties") or {}).items():
        p = f"{path}.{name}" if path else name
        desc = " ".join(str(child.get("description", "")).split())
        req = "yes" if name in required else ""
        out.append(f"| `{p}` | {kind(child)} | {req} | {desc} |")
        in_main = p.startswith(("spec.source.", "spec.sink."))
        if name.endswith("SecretRef") or (name in SHARED and not in_main) or name in ("affinity",):
            continue
        if depth < 6:
            target = child.get("items", child) if child.get("type") == "array" else child
            rows(target, p + ("[]" if child.get("type") == "array" else ""), out, depth + 1)


def render() -> str:
    crd = yaml.safe_load(CRD.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    lines = [
        "# DataFlow spec reference",
        "",
        "Generated from the CRD by `scripts/gen_spec_docs.py`; `kubectl explain dataflow.spec` shows the same.",
        "Each connector block (`kafka`, `postgresql`, `trino`, `nessie`) is the same wherever it appears",
        "(source, sink, errors, route sinks); it is listed in full under `source` and `sink`.",
        "Every `…SecretRef` is `{name, key, namespace?}` (a Secret of the DataFlow's own namespace) and wins over",
        "its literal twin.",
        "",
        "| field | type | required | description |",
        "|---|---|---|---|",
    ]
    rows(spec, "spec", lines)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- connector tables


def _type_text(info: FieldInfo) -> str:
    node = gen_crd.field_schema(info)
    text = kind(node)
    if node.get("type") in ("integer", "number") and "minimum" in node:
        text += f", {node['minimum']:,}{DASH}{node['maximum']:,}" if "maximum" in node else f", ≥ {node['minimum']}"
    return text


def _default_text(info: FieldInfo) -> str:
    default = info.default
    if default is None or info.is_required() or isinstance(default, BaseModel):
        return DASH
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, str):
        return f"`{default}`" if default else '`""`'
    return str(int(default) if isinstance(default, float) and default.is_integer() else default)


def _nested_model(info: FieldInfo) -> type[SpecModel] | None:
    for arg in (info.annotation, *typing.get_args(info.annotation)):
        if isinstance(arg, type) and issubclass(arg, SpecModel):
            return arg
    return None


def _names(prefix: str, name: str, info: FieldInfo) -> str:
    alias = prefix + (info.alias or name)
    marker = secret_marker(info)
    if marker is None:
        return f"`{alias}`"
    if not marker.in_manifest:
        return f"`{alias}SecretRef`"
    return f"`{alias}` / `{alias}SecretRef`"


def _field_names(model: type[BaseModel]) -> str:
    return ", ".join(_names("", n, f) for n, f in model.model_fields.items() if twin_of(f) is None)


def field_table(model: type[BaseModel], sides: set[str]) -> list[str]:
    """Rows for the fields of `model` used by exactly the listed sides (`common` = both)."""
    lines = ["| field | type | default | description |", "|---|---|---|---|"]

    def add(owner: type[BaseModel], prefix: str, depth: int) -> None:
        for name, info in owner.model_fields.items():
            if twin_of(info) is not None:
                continue
            side = side_of(info) or "common"
            if depth == 0 and side not in sides:
                continue
            nested = _nested_model(info)
            desc = " ".join((info.description or "").split())
            if side_of(info) is not None:  # written to follow "Source: " in the CRD
                desc = desc[:1].upper() + desc[1:]
            names = _names(prefix, name, info)
            marker = secret_marker(info)
            if marker is not None and not marker.in_manifest:
                lines.append(f"| {names} | Secret key | {DASH} | {desc} |")
                continue
            if nested is not None:
                if depth >= 1:
                    lines.append(f"| {names} | object | {DASH} | {desc} Fields: {_field_names(nested)}. |")
                    continue
                lines.append(f"| {names} | object | {DASH} | {desc} |")
                add(nested, f"{info.alias or name}.", depth + 1)
                continue
            lines.append(f"| {names} | {_type_text(info)} | {_default_text(info)} | {desc} |")

    add(model, "", 0)
    return lines


def render_tables(text: str) -> str:
    def table(match: re.Match[str]) -> str:
        connector = CONNECTOR_BY_TYPE[match[2]]
        sides = set(match[3].split("+"))
        model = connector.sink if "sink" in sides and "source" not in sides else connector.source
        lines = field_table(model, sides)
        if "common" not in sides:
            common = [f"`{f.alias or n}`" for n, f in model.model_fields.items()
                      if side_of(f) is None and twin_of(f) is None]
            lines = [f"Also the fields both sides use: {', '.join(common)}.", "", *lines]
        return match[1] + "\n".join(lines) + "\n" + match[5]

    return TABLE.sub(table, text)


def outputs() -> list[tuple[Path, str]]:
    pages = [(OUT, render())]
    for page in sorted(CONNECTOR_DOCS.glob("*.md")):
        text = page.read_text()
        if TABLE.search(text):
            pages.append((page, render_tables(text)))
    return pages


def main() -> int:
    pages = outputs()
    if "--check" in sys.argv:
        stale = [p for p, text in pages if not p.exists() or p.read_text() != text]
        for p in stale:
            print(f"stale: {p.relative_to(REPO)} (run scripts/gen_spec_docs.py)", file=sys.stderr)
        return 1 if stale else 0
    for p, text in pages:
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
