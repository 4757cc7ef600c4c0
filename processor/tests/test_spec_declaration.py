"""The spec models are the one declaration: the catalog, the registry, the builder and the CRD agree.

``scripts/gen_crd.py`` builds the CRD's connector and transformation blocks from the models, and
``tests/unit/test_generated_copies.py`` fails when a generated file differs from its generator's
output; these tests check what generation alone cannot: that every type in the catalog has its
implementation, that a connector's two sides declare the same fields, that the secret markers are
the only source of ``…SecretRef`` fields, and that the bounds the CRD states are the ones the
models enforce.
"""

from __future__ import annotations

import importlib
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from dataflow_processor.connectors import registry
from dataflow_processor.spec.catalog import CONNECTOR_TYPES, CONNECTORS, TRANSFORMATION_TYPES, TRANSFORMATIONS
from dataflow_processor.spec.common import Side, SpecModel, required_secrets, secret_marker, twin_of
from dataflow_processor.spec.connectors import PostgresSinkConfig, TrinoSinkConfig
from dataflow_processor.spec.dataflow import DataFlowSpec
from dataflow_processor.spec.endpoints import SinkSpec, SourceSpec
from dataflow_processor.spec.transformation_spec import TransformationSpec
from dataflow_processor.transforms.base import Transform
from dataflow_processor.transforms.chain import transform_class

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml"
POLICY = REPO / "config/policy/validating-admission-policy.yaml"


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]  # type: ignore[no-any-return]


def models_below(model: type[BaseModel]) -> set[type[SpecModel]]:
    found: set[type[SpecModel]] = set()
    for info in model.model_fields.values():
        for arg in (info.annotation, *typing.get_args(info.annotation)):
            for inner in (arg, *typing.get_args(arg)):
                if isinstance(inner, type) and issubclass(inner, SpecModel) and inner not in found:
                    found.add(inner)
                    found |= models_below(inner)
    return found


ALL_MODELS = sorted(models_below(DataFlowSpec), key=lambda m: m.__qualname__)


def test_the_typed_blocks_are_the_catalogs() -> None:
    assert list(SourceSpec.blocks or {}) == list(CONNECTOR_TYPES)
    assert list(SinkSpec.blocks or {}) == list(CONNECTOR_TYPES)
    assert list(TransformationSpec.blocks or {}) == list(TRANSFORMATION_TYPES)
    assert typing.get_args(SourceSpec.model_fields["type"].annotation) == CONNECTOR_TYPES
    assert typing.get_args(TransformationSpec.model_fields["type"].annotation) == TRANSFORMATION_TYPES
    for connector in CONNECTORS:
        assert SourceSpec.model_fields[connector.type].annotation == connector.source | None
        assert SinkSpec.model_fields[connector.type].annotation == connector.sink | None


@pytest.mark.parametrize("connector", CONNECTORS, ids=lambda c: c.type)
def test_each_catalog_module_registers_its_source_and_sink(connector: Any) -> None:
    assert registry.BUILTIN_MODULES[connector.type] == connector.module
    importlib.import_module(connector.module)
    sources, sinks = registry.registered()
    assert connector.type in sources
    assert connector.type in sinks
    source_factory = registry._sources[connector.type]
    sink_factory = registry._sinks[connector.type]
    assert typing.get_type_hints(source_factory.__init__)["config"] is connector.source
    assert typing.get_type_hints(sink_factory.__init__)["config"] is connector.sink


@pytest.mark.parametrize("entry", TRANSFORMATIONS, ids=lambda t: t.type)
def test_each_transformation_builds_the_class_the_catalog_names(entry: Any) -> None:
    cls = transform_class(entry.type)
    assert issubclass(cls, Transform)
    assert cls.type_name == entry.type
    assert typing.get_type_hints(cls.__init__)["config"] is entry.config


@pytest.mark.parametrize("connector", CONNECTORS, ids=lambda c: c.type)
def test_both_sides_of_a_connector_declare_the_same_fields(connector: Any) -> None:
    source, sink = connector.source.model_fields, connector.sink.model_fields
    assert list(source) == list(sink)
    for name in source:
        assert repr(source[name]) == repr(sink[name]), name


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__qualname__)
def test_every_secret_ref_is_a_declared_twin(model: type[SpecModel]) -> None:
    """A `…SecretRef` field exists only as the twin `secret()` made, right after its literal."""
    names = list(model.model_fields)
    for index, (name, info) in enumerate(model.model_fields.items()):
        if (info.alias or name).endswith("SecretRef"):
            literal = twin_of(info)
            assert literal is not None, f"{model.__qualname__}.{name} is declared by hand"
            assert names[index - 1] == literal
            assert secret_marker(model.model_fields[literal]) is not None


def test_required_markers_drive_the_processor_and_the_policy() -> None:
    """Each field a connector requires is refused by the model and by the policy, in the same words."""
    messages = {v["message"] for v in next(yaml.safe_load_all(POLICY.read_text()))["spec"]["validations"]}
    for connector in CONNECTORS:
        sides: tuple[tuple[Side, type[SpecModel]], ...] = (("source", connector.source), ("sink", connector.sink))
        for side, model in sides:
            for name in required_secrets(model, side):
                alias = model.model_fields[name].alias or name
                assert f"spec.{side}.{connector.type}.{alias}: required (or {alias}SecretRef)" in messages
                assert f"spec.{side}.config.{alias}: required (or {alias}SecretRef)" in messages
    with pytest.raises(ValidationError, match="table or tableSecretRef is required"):
        PostgresSinkConfig.model_validate({"connectionString": "postgres://x"})
    PostgresSinkConfig.model_validate({"connectionString": "postgres://x", "tableSecretRef": {"name": "s", "key": "k"}})


def crd_blocks() -> list[tuple[str, dict[str, Any], type[SpecModel]]]:
    props = spec_schema()["properties"]
    out = [(f"{place}.{c.type}", props[place]["properties"][c.type], c.source)
           for place in ("source", "sink", "errors") for c in CONNECTORS]
    steps = props["transformations"]["items"]["properties"]
    out += [(f"transformations.{t.type}", steps[t.type], t.config) for t in TRANSFORMATIONS]
    return out


def walk(schema: dict[str, Any], model: type[BaseModel], path: str) -> list[str]:
    """Differences between a CRD object and a model: fields, required, bounds, enums."""
    problems = []
    if schema.get("type") == "array":
        schema = schema["items"]
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    in_crd = {k for k, info in fields.items() if (m := secret_marker(info)) is None or m.in_manifest}
    if set(schema["properties"]) != in_crd:
        problems.append(f"{path}: CRD {sorted(schema['properties'])} vs model {sorted(in_crd)}")
    required = [k for k, info in fields.items() if info.is_required()]
    if schema.get("required", []) != required:
        problems.append(f"{path}: required {schema.get('required')} vs {required}")
    for key, node in schema["properties"].items():
        info = fields.get(key)
        if info is None:
            continue
        if not node.get("description"):
            problems.append(f"{path}.{key}: no description")
        bounds = {type(m).__name__: m for m in info.metadata}
        for crd_key, attr, cls in (("minimum", "ge", "Ge"), ("maximum", "le", "Le")):
            if (crd_key in node) != (cls in bounds) or (cls in bounds and node[crd_key] != getattr(bounds[cls], attr)):
                problems.append(f"{path}.{key}: {crd_key} {node.get(crd_key)} vs model {bounds.get(cls)}")
        annotation = info.annotation
        literal = [a for a in (annotation, *typing.get_args(annotation)) if typing.get_origin(a) is typing.Literal]
        if literal and node.get("enum") != list(typing.get_args(literal[0])):
            problems.append(f"{path}.{key}: enum {node.get('enum')} vs {typing.get_args(literal[0])}")
        for arg in (annotation, *typing.get_args(annotation)):
            if isinstance(arg, type) and issubclass(arg, SpecModel) and arg not in (SinkSpec, SourceSpec):
                problems += walk(node, arg, f"{path}.{key}")
    return problems


@pytest.mark.parametrize("place, schema, model", crd_blocks(), ids=lambda v: v if isinstance(v, str) else "")
def test_crd_blocks_state_the_models_fields_and_bounds(place: str, schema: dict[str, Any], model: Any) -> None:
    assert walk(schema, model, f"spec.{place}") == []


def test_crd_enums_are_the_catalogs() -> None:
    props = spec_schema()["properties"]
    for place in ("source", "sink", "errors"):
        assert props[place]["properties"]["type"]["enum"] == list(CONNECTOR_TYPES)
    assert props["transformations"]["items"]["properties"]["type"]["enum"] == list(TRANSFORMATION_TYPES)


def test_fractional_flush_intervals_are_accepted_within_the_crd_bounds() -> None:
    """batchFlushIntervalSeconds is a number (0-3600) in the CRD and in the model alike."""
    node = spec_schema()["properties"]["sink"]["properties"]["trino"]["properties"]["batchFlushIntervalSeconds"]
    assert (node["type"], node["minimum"], node["maximum"]) == ("number", 0, 3600)
    base = {"serverURL": "http://t:8080", "catalog": "c", "schema": "s", "table": "t"}
    quarter = TrinoSinkConfig.model_validate({**base, "batchFlushIntervalSeconds": 0.25})
    assert quarter.batch_flush_interval_seconds == 0.25
    with pytest.raises(ValidationError, match="less than or equal to 3600"):
        TrinoSinkConfig.model_validate({**base, "batchFlushIntervalSeconds": 3600.5})
