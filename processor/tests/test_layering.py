"""Import rules of the package, read from the source (``TYPE_CHECKING`` imports included):

* **Layers.** ``cli`` → ``pipeline``/``health``/``status`` → ``connectors``/``transforms``/``admission``
  → ``spec``/``records``/``watermark``/``paths``/``conditions``/…: lower layers never import upper
  ones, and every module is in a layer (a new one must be placed).
* **Connectors are independent.** No connector technology imports another (a package such as
  ``connectors/postgresql/`` is one technology); they share only the helpers in ``SHARED_CONNECTOR_MODULES``.
* **No import cycles**, inside a layer either.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "dataflow_processor"

LAYERS = [
    ("cli", "__main__"),
    ("pipeline", "health", "status"),
    ("connectors", "transforms", "admission", "errors_envelope", "metrics", "logging_json"),
    (
        "spec",
        "records",
        "watermark",
        "paths",
        "conditions",
        "condition_expr",
        "cel_program",
        "cel_cost",
        "timeformat",
        "redaction",
        "owned_names",
        "kube_client",
    ),
]

# Modules of connectors/ that any connector may import: interfaces, registration, and helpers
# that are no technology of their own (a value rule, an upsert rule, a checkpoint store, a codec, an
# auth client).
SHARED_CONNECTOR_MODULES = {
    "__init__", "base", "registry", "values", "upsert", "checkpoint", "polling", "avro", "keycloak",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("dataflow_processor", *parts))


MODULE_PATHS = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULES = sorted(MODULE_PATHS)


def layer_of(module: str) -> int | None:
    top = module.split(".")[1] if module.startswith("dataflow_processor.") else None
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    return None


@cache
def imports(module: str) -> frozenset[str]:
    """The package's modules that ``module`` imports (``from pkg import submodule`` names the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(MODULE_PATHS[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dataflow_processor"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULE_PATHS else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("dataflow_processor."))
    found.discard(module)
    return frozenset(found)


def connector_of(module: str) -> str | None:
    """The connector technology ``module`` belongs to (``None`` outside connectors/ or for a shared helper)."""
    parts = module.split(".")
    if len(parts) < 3 or parts[1] != "connectors" or parts[2] in SHARED_CONNECTOR_MODULES:
        return None
    return parts[2]


def test_the_rules_see_the_package() -> None:
    """Guard against the checks passing vacuously (a moved package, a broken import parser)."""
    assert "dataflow_processor.pipeline" in MODULES and "dataflow_processor.admission.validate" in MODULES
    assert "dataflow_processor.connectors.base" in imports("dataflow_processor.pipeline")
    assert "dataflow_processor.connectors.registry" in imports("dataflow_processor.connectors.kafka")
    assert {connector_of(m) for m in MODULES} >= {None, "kafka", "postgresql", "trino", "nessie", "memory"}


@pytest.mark.parametrize("module", MODULES)
def test_every_module_is_in_a_layer(module: str) -> None:
    assert layer_of(module) is not None or module == "dataflow_processor", f"place {module} in LAYERS"


@pytest.mark.parametrize("module", MODULES)
def test_imports_only_go_downward(module: str) -> None:
    own = layer_of(module)
    upward = [m for m in imports(module) if own is not None and (layer := layer_of(m)) is not None and layer < own]
    assert not upward, f"{module} imports upper layer(s) {upward}"


@pytest.mark.parametrize("module", [m for m in MODULES if connector_of(m) is not None])
def test_no_connector_imports_another(module: str) -> None:
    own = connector_of(module)
    others = [m for m in imports(module) if (other := connector_of(m)) is not None and other != own]
    assert not others, f"{module} imports another connector: {others} (share code through a helper module)"


def test_no_import_cycles() -> None:
    """Depth-first search over the import graph; a cycle is reported as the modules along it."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(imports(module)):
            if imported not in MODULE_PATHS:
                continue
            if state.get(imported) == "open":
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)
