#!/usr/bin/env python3
"""Generate the DataFlow CRD (`config/crd/bases/dataflow.dataflow.io_dataflows.yaml`).

The DataFlow schema is declared once, by the processor's spec models
(`processor/src/dataflow_processor/spec/`): every connector and transformation block is built here
from the models' fields (`model_fields`: description, default, bounds, secret twins, CRD-only
keywords), the types and blocks from the catalog (`spec/catalog.py`). What the models do not hold —
the Kubernetes-typed fields (resources, affinity, tolerations…), the status, the `{type, config}`
union — is spelled here, with small builders for the shapes that repeat. Every field carries a
description and a bound (`maxLength`, `maxItems`, `maxProperties`): bounded types keep the CEL rules
of the admission policy within the API server's cost budget.

The Helm chart, the OLM bundle and the processor's offline validation copy or read the output.
Run `python scripts/gen_crd.py` after changing a model; `tests/unit/test_generated_copies.py` fails
otherwise.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "processor/src"))  # the spec models: the one declaration of the blocks

from dataflow_processor.spec.catalog import (  # noqa: E402
    CONNECTOR_TYPES,
    CONNECTORS,
    TRANSFORMATION_TYPES,
    TRANSFORMATIONS,
)
from dataflow_processor.spec.common import (  # noqa: E402
    SecretRef,
    SpecModel,
    crd_keywords,
    secret_marker,
    side_of,
    twin_of,
)
from dataflow_processor.spec.endpoints import SinkSpec  # noqa: E402
from dataflow_processor.spec.transformations import MAX_ROUTES  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

OUT = REPO / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml"

Schema = dict[str, Any]
# Copies shipped elsewhere (package data, chart, bundle); all must equal OUT.
COPIES = [
    REPO / "processor/src/dataflow_processor/admission/data/crd.yaml",
    REPO / "charts/dataflow-operator/crds/dataflow.dataflow.io_dataflows.yaml",
]


def s(desc: str, max_len: int = 1024, **kw: Any) -> Schema:
    return {"type": "string", "description": desc, "maxLength": max_len, **kw}


def b(desc: str) -> Schema:
    return {"type": "boolean", "description": desc}


def i(desc: str, minimum: int | None = None, maximum: int | None = None) -> Schema:
    out: Schema = {"type": "integer", "description": desc}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def obj(desc: str, props: dict[str, Schema], required: list[str] | None = None) -> Schema:
    out: Schema = {"type": "object", "description": desc, "properties": props}
    if required:
        out["required"] = required
    return out


def strlist(desc: str, max_items: int = 64, max_len: int = 512, min_items: int = 0) -> Schema:
    out: Schema = {
        "type": "array",
        "description": desc,
        "maxItems": max_items,
        "items": {"type": "string", "maxLength": max_len},
    }
    if min_items:
        out["minItems"] = min_items
    return out


def secret_ref(what: str) -> Schema:
    return model_schema(
        SecretRef,
        f"Reads {what} from a key of a Kubernetes Secret. Takes precedence over the literal field. "
        "Resolved by the operator into the processor's own Secret, never into a ConfigMap.",
    )


def describe(info: FieldInfo) -> str:
    """A field's CRD description: its own text, the side that uses it, and its default."""
    text = info.description or ""
    side = side_of(info)
    if side is not None:
        text = f"{side.capitalize()}: {text}"
    default = info.default
    if "default" not in text.lower() and default not in (None, False, "", PydanticUndefined):
        number = int(default) if isinstance(default, float) and default.is_integer() else default
        shown = f"`{default}`" if isinstance(default, str) else str(number)
        text = f"{text} Default {shown}."
    return text


# Key order of a generated schema node (readers of the YAML find the same keys in the same places).
_ORDER = ["type", "description", "maxLength", "minLength", "enum", "minimum", "maximum", "maxItems", "items",
          "minItems", "properties", "required"]


def _ordered(node: Schema) -> Schema:
    return {k: node[k] for k in sorted(node, key=lambda k: _ORDER.index(k) if k in _ORDER else len(_ORDER))}


def _merge(node: Schema, extra: Schema) -> Schema:
    out = dict(node)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _bounds(metadata: list[Any]) -> Schema:
    out: Schema = {}
    for item in metadata:
        for attr, key in (("max_length", "maxLength"), ("min_length", "minLength"), ("ge", "minimum"),
                          ("le", "maximum")):
            value = getattr(item, attr, None)
            if value is not None:
                out[key] = value
    return out


def _type_schema(annotation: Any, metadata: list[Any]) -> Schema:
    """The schema of a Python type (``X | None`` is ``X``: the CRD has no nulls)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        [annotation] = args
        return _type_schema(annotation, metadata)
    if origin is typing.Annotated:
        inner, *more = typing.get_args(annotation)
        return _type_schema(inner, [*metadata, *(m for x in more for m in getattr(x, "metadata", [x]))])
    bounds = _bounds(metadata)
    if annotation is bool:
        return {"type": "boolean"}
    if annotation in (int, float):
        return {"type": "integer" if annotation is int else "number", **bounds}
    if annotation is str:
        return {"type": "string", **bounds}
    if origin is typing.Literal:
        return {"type": "string", "enum": list(typing.get_args(annotation)), **bounds}
    if origin is list:
        [item] = typing.get_args(annotation)
        array: Schema = {"type": "array", "items": _type_schema(item, [])}
        if "maxLength" in bounds:
            array["maxItems"] = bounds["maxLength"]
        if "minLength" in bounds:
            array["minItems"] = bounds["minLength"]
        return array
    if annotation is SinkSpec:
        return endpoint("Route sink")
    if isinstance(annotation, type) and issubclass(annotation, SpecModel):
        return model_schema(annotation, "")
    raise TypeError(f"no CRD schema for {annotation!r}")


def field_schema(info: FieldInfo) -> Schema:
    node = _type_schema(info.annotation, list(info.metadata))
    node["description"] = describe(info) or node.get("description", "")
    if node["type"] == "array" and "items" in node:
        node["items"] = _ordered(node["items"])
    return _ordered(_merge(node, crd_keywords(info)))


def model_schema(model: type[BaseModel], desc: str) -> Schema:
    """A model as a CRD object: each field by its alias, each secret field with its `…SecretRef` twin
    (a secret target, filled only from the mounted Secret, has its ref only)."""
    props: dict[str, Schema] = {}
    required = []
    fields = model.model_fields
    for name, info in fields.items():
        alias = info.alias or name
        literal = twin_of(info)
        if literal is not None:
            marker = secret_marker(fields[literal])
            assert marker is not None
            what = marker.what or f"`{fields[literal].alias or literal}`"
            props[alias] = secret_ref(what)
            if marker.ref_note:
                props[alias]["description"] += " " + marker.ref_note
            continue
        marker = secret_marker(info)
        if marker is not None and not marker.in_manifest:
            continue
        props[alias] = field_schema(info)
        if info.is_required():
            required.append(alias)
    return obj(desc, props, required)


def config_block(desc: str, blocks: list[Schema]) -> Schema:
    """The `config` shape: every field any typed block has (so CEL rules type-check and known fields
    are typed), unknown fields kept (settings this version does not know pass through)."""
    union: dict[str, Schema] = {}
    for block in blocks:
        for name, field in block["properties"].items():
            union.setdefault(name, _undocumented(field))
    if "routes" in union:
        # Route sinks in the `config` shape are checked by the policy, not typed here: a second
        # typed copy of every connector would double the CRD's size.
        union["routes"] = {"type": "array", "maxItems": MAX_ROUTES, "items": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"condition": {"type": "string", "maxLength": 4096},
                           "sink": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}
    return {"type": "object", "description": desc, "properties": union, "x-kubernetes-preserve-unknown-fields": True}


def _undocumented(node: Any) -> Any:
    """A copy without descriptions: the typed block next to it documents the same fields."""
    if isinstance(node, dict):
        return {k: _undocumented(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_undocumented(v) for v in node]
    return node


def endpoint(role: str) -> Schema:
    """A source or sink: `type` plus one block per connector of the catalog (its fields are the same
    on both sides: a source config accepts the sink-only fields, and vice versa)."""
    props: dict[str, Schema] = {
        "type": s(f"{role} type; the block of the same name holds its settings.", 16, enum=list(CONNECTOR_TYPES)),
    }
    for connector in CONNECTORS:
        props[connector.type] = model_schema(connector.source, connector.description)
    props["config"] = config_block(
        "The same settings in the `{type, config}` shape (see docs/compatibility.md); normalized to the block named "
        "by `type`. Prefer the typed block.", [props[t] for t in CONNECTOR_TYPES])
    return obj(f"The {role.lower()}: `type` plus one settings block.", props, required=["type"])


def transformation() -> Schema:
    props: dict[str, Schema] = {"type": s("Transformation type.", 16, enum=list(TRANSFORMATION_TYPES))}
    for entry in TRANSFORMATIONS:
        props[entry.type] = model_schema(entry.config, entry.description)
    props["config"] = config_block(
        "The same settings in the `{type, config}` shape (see docs/compatibility.md); normalized to the block named "
        "by `type`.", [props[t] for t in TRANSFORMATION_TYPES])
    return obj("One transformation: `type` plus its settings block.", props, required=["type"])


# A Kubernetes resource quantity (the pattern of core/v1 ResourceRequirements).
QUANTITY = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
            r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")


def quantity_map(desc: str) -> Schema:
    return {
        "type": "object",
        "description": desc,
        "maxProperties": 16,
        "additionalProperties": {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY,
        },
    }


def _selector_requirements(desc: str) -> Schema:
    return {"type": "array", "description": desc, "maxItems": 16, "items": obj("A requirement.", {
        "key": s("Label or field key.", 317, minLength=1),
        "operator": s("In, NotIn, Exists, DoesNotExist, Gt or Lt.", 16,
                      enum=["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]),
        "values": strlist("Values.", 64, 63),
    }, required=["key", "operator"])}


def _label_selector(desc: str) -> Schema:
    return obj(desc, {
        "matchLabels": {"type": "object", "description": "Labels to match.", "maxProperties": 32,
                        "additionalProperties": {"type": "string", "maxLength": 63}},
        "matchExpressions": _selector_requirements("Label requirements."),
    })


def affinity_schema() -> Schema:
    """core/v1 Affinity, typed: a free-form object here could nest deeper than the operator can parse."""
    term = obj("A node selector term.", {
        "matchExpressions": _selector_requirements("Node label requirements."),
        "matchFields": _selector_requirements("Node field requirements."),
    })
    pod_term = obj("A pod affinity term.", {
        "labelSelector": _label_selector("Pods to match."),
        "namespaceSelector": _label_selector("Namespaces to look in."),
        "namespaces": strlist("Namespaces to look in.", 32, 63),
        "topologyKey": s("Node label that defines the topology domain.", 317, minLength=1),
        "matchLabelKeys": strlist("Pod label keys merged into the label selector.", 16, 317),
        "mismatchLabelKeys": strlist("Pod label keys excluded from the label selector.", 16, 317),
    }, required=["topologyKey"])

    def weighted(field: str, schema: Schema) -> Schema:
        return {"type": "array", "description": "Preferred terms, by weight.", "maxItems": 16,
                "items": obj("A weighted term.", {"weight": i("Weight, 1-100.", 1, 100), field: schema},
                             required=["weight", field])}

    def pod_affinity(desc: str) -> Schema:
        return obj(desc, {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "type": "array", "description": "Terms that must hold.", "maxItems": 16, "items": pod_term},
            "preferredDuringSchedulingIgnoredDuringExecution": weighted("podAffinityTerm", pod_term),
        })

    return obj("Processor pod affinity (core/v1 Affinity).", {
        "nodeAffinity": obj("Node affinity.", {
            "requiredDuringSchedulingIgnoredDuringExecution": obj("Node selector that must match.", {
                "nodeSelectorTerms": {"type": "array", "description": "Terms, any of which matches.",
                                      "maxItems": 16, "items": term},
            }, required=["nodeSelectorTerms"]),
            "preferredDuringSchedulingIgnoredDuringExecution": weighted("preference", term),
        }),
        "podAffinity": pod_affinity("Pod affinity."),
        "podAntiAffinity": pod_affinity("Pod anti-affinity."),
    })


def spec_schema() -> Schema:
    sink = endpoint("Sink")
    props: dict[str, Schema] = {
        "source": endpoint("Source"),
        "sink": sink,
        "errors": endpoint("Errors sink"),
        "transformations": {
            "type": "array",
            "description": "Transformations applied in order.",
            "maxItems": 32,
            "items": transformation(),
        },
        "resources": obj("Processor container resources. Default requests 100m/128Mi, limits 500m/512Mi.", {
            "limits": quantity_map("Resource limits."),
            "requests": quantity_map("Resource requests."),
        }),
        "nodeSelector": {
            "type": "object", "description": "Processor pod node selector.", "maxProperties": 32,
            "additionalProperties": {"type": "string", "maxLength": 317},
        },
        "affinity": affinity_schema(),
        "tolerations": {
            "type": "array", "description": "Processor pod tolerations.", "maxItems": 32,
            "items": obj("A toleration (core/v1).", {
                "key": s("Taint key.", 317), "operator": s("Exists or Equal.", 8, enum=["Exists", "Equal"]),
                "value": s("Taint value.", 63), "effect": s("Taint effect.", 32,
                                                           enum=["NoSchedule", "PreferNoSchedule", "NoExecute"]),
                "tolerationSeconds": {"type": "integer", "format": "int64", "description": "Seconds tolerated."},
            }),
        },
        "imagePullSecrets": {
            "type": "array", "description": "Pull secrets for the processor image.", "maxItems": 16,
            "items": obj("A LocalObjectReference.", {"name": s("Secret name.", 253)}),
        },
        "processorImage": s("Overrides the processor image chosen by the operator; only images the operator allows "
                            "(its own, or under its allowed prefixes) are run.", 1024),
    }
    return obj("DataFlow: source → transformations → sink, with an optional errors sink.", props,
               required=["source", "sink"])


def status_schema() -> Schema:
    return {
        "type": "object",
        "description": "Observed state, written by the operator (phase) and the processor (counters).",
        "properties": {
            "phase": s("Pending, Running, Error or Stopped.", 16),
            "message": s("Human-readable detail of the phase.", 4096),
            "observedGeneration": {"type": "integer", "format": "int64", "description": "Generation last reconciled."},
            "specHash": s("Hash of the resolved spec the processor runs.", 128),
            "processedCount": {"type": "integer", "format": "int64", "description": "Records written to sinks."},
            "errorCount": {"type": "integer", "format": "int64", "description": "Records sent to the errors sink "
                                                                                 "or logged as failed."},
            "lastProcessedTime": {"type": "string", "format": "date-time", "description": "Time of the last write."},
            "conditions": {
                "type": "array", "description": "Standard conditions (Ready, SecretsResolved).", "maxItems": 16,
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                "items": {
                    "type": "object", "required": ["type", "status"],
                    "properties": {
                        "type": s("Condition type.", 316), "status": s("True, False or Unknown.", 8),
                        "reason": s("Machine-readable reason.", 1024), "message": s("Detail.", 32768),
                        "lastTransitionTime": {"type": "string", "format": "date-time"},
                        "observedGeneration": {"type": "integer", "format": "int64"},
                    },
                },
            },
        },
    }


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "dataflows.dataflow.dataflow.io"},
        "spec": {
            "group": "dataflow.dataflow.io",
            "names": {"kind": "DataFlow", "listKind": "DataFlowList", "plural": "dataflows",
                      "singular": "dataflow", "shortNames": ["df"], "categories": ["dataflow"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Source", "type": "string", "jsonPath": ".spec.source.type"},
                    {"name": "Sink", "type": "string", "jsonPath": ".spec.sink.type"},
                    {"name": "Processed", "type": "integer", "jsonPath": ".status.processedCount"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "DataFlow declares a pipeline from a source through transformations to sinks.",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema(),
                        "status": status_schema(),
                    },
                    "required": ["spec"],
                }},
            }],
        },
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes shared sub-schemas out in full: anchors and aliases confuse readers and some tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


HEADER = "# Generated by scripts/gen_crd.py from the spec models (processor/src/dataflow_processor/spec): edit those.\n"


def render() -> str:
    return HEADER + yaml.dump(crd(), Dumper=_PlainDumper, sort_keys=False, width=120, allow_unicode=True)


def outputs(text: str) -> list[tuple[Path, str]]:
    return [(p, text) for p in (OUT, *COPIES)]


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        stale = [str(p.relative_to(REPO)) for p, t in outputs(text) if not p.exists() or p.read_text() != t]
        for name in stale:
            print(f"stale: {name} (run {Path(__file__).relative_to(REPO)})", file=sys.stderr)
        return 1 if stale else 0
    for p, t in outputs(text):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
