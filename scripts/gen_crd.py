#!/usr/bin/env python3
"""Generate the DataFlow CRD (`config/crd/bases/dataflow.dataflow.io_dataflows.yaml`).

The CRD file is the one declaration of the DataFlow schema: the Helm chart, the OLM bundle and the
processor's offline validation all copy or read it, and tests fail when a copy drifts. This script is
how that file is written — the schema is spelled here once, with small builders for the shapes that
repeat (secret refs, connector blocks), so that every field carries a description and a bound
(`maxLength`, `maxItems`, `maxProperties`): bounded types keep the CEL rules of the admission policy
within the API server's cost budget.

Run `python scripts/gen_crd.py` after changing it; `tests/unit/test_crd_drift.py` fails otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml"

CONNECTOR_TYPES = ["kafka", "postgresql", "trino", "nessie"]
# Largest batchSize/readBatchSize of any connector: what the default 512 MiB processor holds with
# room to spare (~1.3 KB per 220-byte record in flight; processor/README.md "Memory").
MAX_BATCH = 100_000
TRANSFORMATION_TYPES = [
    "timestamp", "flatten", "filter", "mask", "router", "select", "remove", "snakeCase", "camelCase",
]

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
    return obj(
        f"Reads {what} from a key of a Kubernetes Secret. Takes precedence over the literal field. "
        "Resolved by the operator into the processor's own Secret, never into a ConfigMap.",
        {
            "name": s("Secret name.", 253, minLength=1),
            "namespace": s("The DataFlow's own namespace, or omitted: a Secret of another namespace is never "
                           "read.", 63),
            "key": s("Key inside the Secret's data.", 253, minLength=1),
        },
        required=["name", "key"],
    )


def with_ref(props: dict[str, Schema], name: str, field: Schema) -> None:
    props[name] = field
    props[f"{name}SecretRef"] = secret_ref(f"`{name}`")


def basic_auth(desc: str) -> Schema:
    props: dict[str, Schema] = {}
    with_ref(props, "username", s("User name.", 253))
    with_ref(props, "password", s("Password.", 1024))
    return obj(desc, props)


def tls_block() -> Schema:
    props: dict[str, Schema] = {
        "insecureSkipVerify": b("Skip verification of the server certificate (testing only)."),
        "caFile": s("Path of a PEM CA bundle inside the processor container.", 1024),
        "certFile": s("Path of a PEM client certificate inside the processor container.", 1024),
        "keyFile": s("Path of a PEM client key inside the processor container.", 1024),
        "caSecretRef": secret_ref("the PEM CA bundle"),
        "certSecretRef": secret_ref("the PEM client certificate"),
        "keySecretRef": secret_ref("the PEM client private key"),
    }
    return obj("TLS settings (TLS 1.2 or newer).", props)


def kafka_block() -> Schema:
    props: dict[str, Schema] = {}
    with_ref(props, "brokers", strlist("Bootstrap servers, host:port.", 100, 253))
    props["brokersSecretRef"]["description"] += " The value is a comma-separated list."
    with_ref(props, "topic", s("Topic to read (source) or write (sink).", 249))
    with_ref(props, "consumerGroup", s("Consumer group (source only). Default `dataflow-operator`.", 249))
    props["tls"] = tls_block()
    sasl: dict[str, Schema] = {
        "mechanism": s("SASL mechanism.", 32, enum=["plain", "scram-sha-256", "scram-sha-512", "PLAIN",
                                                   "SCRAM-SHA-256", "SCRAM-SHA-512"]),
    }
    with_ref(sasl, "username", s("SASL user name.", 253))
    with_ref(sasl, "password", s("SASL password.", 1024))
    props["sasl"] = obj("SASL authentication.", sasl)
    props["format"] = s("Payload format of the source. Default `json`.", 8, enum=["json", "avro"])
    with_ref(props, "avroSchema", s("Static Avro schema (JSON text), for `format: avro` without a registry.", 65536))
    props["avroSchemaFile"] = s("Path of a static Avro schema file inside the processor container.", 1024)
    registry: dict[str, Schema] = {}
    with_ref(registry, "url", s("Schema registry URL (Confluent wire format).", 2048))
    registry["basicAuth"] = basic_auth("Schema registry basic authentication.")
    registry["tls"] = tls_block()
    props["schemaRegistry"] = obj("Confluent schema registry for Avro records.", registry)
    props["rawMode"] = b("Source: wrap each payload as `{value, _metadata}` instead of parsing it as the record.")
    props["batchSize"] = i("Sink: records per produce batch. Default 500.", 1, MAX_BATCH)
    return obj("Kafka connector.", props)


def postgresql_block() -> Schema:
    props: dict[str, Schema] = {}
    with_ref(props, "connectionString", s("libpq URI, `postgres://user:pass@host:5432/db`.", 2048))
    with_ref(props, "table", s("Table, optionally `schema.table`.", 253))
    props.update({
        "query": s("Source: custom SELECT run on every poll (see docs for making it incremental).", 65536),
        "pollInterval": i("Source: seconds between polls. Default 5.", 1, 86400),
        "keyColumn": s("Source: increasing column the poll resumes from. Default `id`.", 63),
        "changeTrackingColumn": s("Source: timestamp column to poll changes by, instead of keyColumn.", 63),
        "readBatchSize": i("Source: rows per poll query. Default 1000.", 1, MAX_BATCH),
        "batchSize": i("Sink: rows per COPY batch and transaction. Default 1000.", 1, MAX_BATCH),
        "batchFlushIntervalSeconds": i("Sink: flush a partial batch after this many seconds. Default 1.", 0, 3600),
        "autoCreateTable": b("Sink: create the table when it does not exist."),
        "upsertMode": b("Sink: INSERT … ON CONFLICT (conflictKey) DO UPDATE."),
        "conflictKey": s("Sink: conflict column(s) for upsertMode, comma-separated. Default `id`.", 253),
        "rawMode": b("Source: emit `{value, _metadata}`; sink: store the whole record in a JSONB `data` column."),
    })
    return obj("PostgreSQL connector.", props)


def trino_block() -> Schema:
    props: dict[str, Schema] = {}
    with_ref(props, "serverURL", s("Trino coordinator URL.", 2048))
    with_ref(props, "catalog", s("Catalog.", 253))
    with_ref(props, "schema", s("Schema.", 253))
    with_ref(props, "table", s("Table.", 253))
    kc: dict[str, Schema] = {}
    for f, d in [("serverURL", "Keycloak base URL."), ("realm", "Realm."), ("clientID", "OAuth2 client id."),
                 ("clientSecret", "OAuth2 client secret."), ("username", "User (password grant)."),
                 ("password", "Password (password grant)."), ("token", "A static bearer token.")]:
        with_ref(kc, f, s(d, 4096 if f == "token" else 1024))
    props.update({
        "query": s("Source: custom SELECT run on every poll.", 65536),
        "pollInterval": i("Source: seconds between polls. Default 5.", 1, 86400),
        "keyColumn": s("Source: increasing column the poll resumes from. Default `id`.", 63),
        "batchSize": i("Sink: rows per INSERT. Default 500.", 1, MAX_BATCH),
        "batchFlushIntervalSeconds": i("Sink: flush a partial batch after this many seconds. Default 1.", 0, 3600),
        "autoCreateTable": b("Sink: create the table when it does not exist."),
        "rawMode": b("Source: emit `{value, _metadata}` records."),
        "queryTimeoutSeconds": i("HTTP timeout of each Trino request, in seconds. Default 30.", 1, 86400),
        "basicAuth": basic_auth("HTTP basic authentication to Trino."),
        "keycloak": obj("Keycloak OAuth2: a static token, the password grant (refreshed before expiry) or "
                        "client credentials.", kc),
    })
    return obj("Trino connector.", props)


def nessie_block() -> Schema:
    props: dict[str, Schema] = {}
    with_ref(props, "baseURL", s("Nessie server URL, e.g. `http://nessie:19120`.", 2048))
    with_ref(props, "namespace", s("Iceberg namespace.", 253))
    with_ref(props, "table", s("Iceberg table.", 253))
    with_ref(props, "token", s("Bearer token.", 8192))
    props.update({
        "branch": s("Nessie branch. Default `main`.", 253),
        "warehouse": s("Nessie warehouse name. Default: the server's default warehouse.", 253),
        "authenticationType": s("AUTO (bearer if a token is set, else basic if set, else none), BEARER, BASIC or "
                                "NONE. Default AUTO.", 8, enum=["AUTO", "BEARER", "BASIC", "NONE"]),
        "basicAuth": basic_auth("Basic authentication to Nessie."),
        "pollInterval": i("Source: seconds between snapshot polls. Default 10.", 1, 86400),
        "rawMode": b("Source: emit `{value, _metadata}` records."),
        "batchSize": i("Sink: rows per Iceberg commit. Default 10000.", 1, MAX_BATCH),
        "batchFlushIntervalSeconds": i("Sink: commit a partial batch after this many seconds. Default 10.", 0, 3600),
        "autoCreateTable": b("Sink: create the namespace and table (schema inferred from the first batch)."),
        "s3Endpoint": s("S3 endpoint of the warehouse, e.g. `http://minio:9000`.", 2048),
        "s3Region": s("S3 region. Default `us-east-1`.", 64),
        "accessKeySecretRef": secret_ref("the S3 access key id"),
        "secretAccessKeySecretRef": secret_ref("the S3 secret access key"),
    })
    return obj("Nessie connector: Iceberg tables through Nessie's Iceberg REST catalog.", props)


def config_block(desc: str, blocks: list[Schema]) -> Schema:
    """The `config` shape: every field any typed block has (so CEL rules type-check and known fields
    are typed), unknown fields kept (settings of later originals pass through)."""
    union: dict[str, Schema] = {}
    for block in blocks:
        for name, field in block["properties"].items():
            union.setdefault(name, _undocumented(field))
    if "routes" in union:
        # Route sinks in the `config` shape are checked by the policy, not typed here: a second
        # typed copy of every connector would double the CRD's size.
        union["routes"] = {"type": "array", "maxItems": 16, "items": {
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


def endpoint(role: str, with_routes: bool = False) -> Schema:
    props: dict[str, Schema] = {
        "type": s(f"{role} type; the block of the same name holds its settings.", 16, enum=CONNECTOR_TYPES),
        "kafka": kafka_block(),
        "postgresql": postgresql_block(),
        "trino": trino_block(),
        "nessie": nessie_block(),
    }
    props["config"] = config_block(
        "Settings in the newer original's shape (`{type, config}`); accepted and normalized to the block named by "
        "`type`. Prefer the typed block.", [props[t] for t in CONNECTOR_TYPES])
    return obj(f"The {role.lower()}: `type` plus one settings block.", props, required=["type"])


def transformation(route_sink: Schema) -> Schema:
    fields = strlist("Field paths (`a.b`, `$.a.b`, `items.0`).", 64, 512, min_items=1)
    props: dict[str, Schema] = {
        "type": s("Transformation type.", 16, enum=TRANSFORMATION_TYPES),
        "timestamp": obj("Set a field to the current time.", {
            "fieldName": s("Field to set. Default `created_at`; dots create nesting.", 512),
            "format": s("RFC3339 (default), RFC3339Nano, Unix, UnixMilli, or a Go layout such as "
                        "`2006-01-02 15:04:05`.", 128),
        }),
        "flatten": obj("Emit one record per element of an array field (at most 10,000 outputs per record; "
                       "a record that would pass it goes whole to the errors sink).", {
            "field": s("Array field path.", 512, minLength=1),
        }, required=["field"]),
        "filter": obj("Keep records matching a condition.", {
            "condition": s("`$.path` (truthy), `$.path == 'v'`, `$.path != 'v'`, or a CEL expression over `record`.",
                           4096, minLength=1),
        }, required=["condition"]),
        "mask": obj("Replace field values with a mask string.", {
            "fields": fields,
            "maskChar": s("Mask character. Default `*`.", 4, minLength=1),
            "keepLength": b("Mask with as many characters as the value has (else three)."),
        }, required=["fields"]),
        "router": obj("Send records matching a condition to another sink (at most 2 routers per DataFlow).", {
            "routes": {
                "type": "array",
                "description": "Routes in order; the first match wins; no match goes to the main sink.",
                "maxItems": 16,
                "minItems": 1,
                "items": obj("A route.", {
                    "condition": s("Route condition, same forms as filter.", 4096, minLength=1),
                    "sink": route_sink,
                }, required=["condition", "sink"]),
            },
        }, required=["routes"]),
        "select": obj("Keep only these fields (output is flat: last path segment).", {"fields": fields}, ["fields"]),
        "remove": obj("Delete these fields.", {"fields": fields}, ["fields"]),
        "snakeCase": obj("Convert keys to snake_case.", {"deep": b("Also nested objects and arrays.")}),
        "camelCase": obj("Convert keys to CamelCase.", {"deep": b("Also nested objects and arrays.")}),
    }
    props["config"] = config_block("Settings in the newer original's shape; normalized to the block named by `type`.",
                                   [props[t] for t in TRANSFORMATION_TYPES])
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
            "items": transformation(endpoint("Route sink")),
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


HEADER = "# Generated by scripts/gen_crd.py — edit that script, then run it. The one source of the schema.\n"


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
