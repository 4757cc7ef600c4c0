"""Import layering (STYLE.md): ``cli`` → ``pipeline``/``health``/``status`` → ``connectors``/``transforms``
→ ``spec``/``records``/``watermark``/``paths``/``conditions``. Lower layers never import upper ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "dataflow_processor"

LAYERS = [
    ("cli", "__main__"),
    ("pipeline", "health", "status"),
    ("connectors", "transforms", "errors_envelope", "metrics", "logging_json"),
    ("spec", "records", "watermark", "paths", "conditions", "timeformat", "redaction", "kube_client"),
]


def layer_of(module: str) -> int | None:
    top = module.split(".")[1] if module.startswith("dataflow_processor.") else None
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    return None


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dataflow_processor."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("dataflow_processor."))
    return found


MODULES = sorted(
    p
    for p in PACKAGE.rglob("*.py")
    if layer_of("dataflow_processor." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)) is not None
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_downward(path: Path) -> None:
    module = "dataflow_processor." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    own = layer_of(module)
    assert own is not None
    upward = [m for m in imports(path) if (layer_of(m) is not None and layer_of(m) < own)]  # type: ignore[operator]
    assert not upward, f"{module} imports upper layer(s) {upward}"
