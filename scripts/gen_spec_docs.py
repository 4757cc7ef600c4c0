#!/usr/bin/env python3
"""Write docs/spec-reference.md from the CRD's descriptions (the CRD is the one declaration).

`tests/unit/test_generated_copies.py` fails when the page is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CRD = REPO / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml"
OUT = REPO / "docs/spec-reference.md"
# Blocks documented once, then referred to.
SHARED = {"kafka", "postgresql", "trino", "nessie", "config"}


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


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"stale: {OUT.relative_to(REPO)} (run scripts/gen_spec_docs.py)", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
