#!/usr/bin/env python3
"""Generate the admission rules of DataFlow: `config/policy/validating-admission-policy.yaml`.

This file is the one place the admission rules are written. The rules that repeat for every place a
connector can appear (source, sink, errors sink, each router route sink) are written once against a
placeholder endpoint `E` and a display path `P`, then expanded for each location, so every message
names the exact field: `spec.sink.postgresql.table: required (or tableSecretRef)`.

The generated ValidatingAdmissionPolicy is what the cluster enforces (Helm chart, kustomize, and the
operator itself for OLM installs) and what `dataflow-processor validate` evaluates offline with
cel-python. Keep expressions to the CEL subset both understand: `has()`, `size()`, `all()`,
`exists()`, `matches()`, `in`, `startsWith()`, `string()`; guard every optional field with `has()`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_crd  # the schema the secret-reference rules walk (it also puts the processor's spec on the path)
from dataflow_processor.spec.catalog import CONNECTOR_TYPES, CONNECTORS, TRANSFORMATION_TYPES, Connector
from dataflow_processor.spec.common import BOTH, Side, secret_fields
from dataflow_processor.spec.dataflow import MAX_ROUTERS  # x MAX_ROUTES routes = route sinks, each a connection
from dataflow_processor.spec.transformations import MAX_ROUTES

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "config/policy/validating-admission-policy.yaml"
POLICY_NAME = "dataflow.dataflow.io"

# Condition forms of the original (`$.path`, `path == 'v'`, `path != "v"`): checked when a condition
# starts with `$`; anything else is taken as CEL, which only the processor can compile.
ORIGINAL_CONDITION = r"""^\$\.?[A-Za-z0-9_\-#*?\\.]+(\s*(==|!=)\s*('[^']*'|"[^"]*"|[^\s'"]+))?$"""
# A compound condition that starts with a path (`$.a && $.b == 'x' || !$.c`): the same atoms joined by
# `&&`/`||`, each optionally behind `!`/`(` and before `)`. The token order is checked here; balanced
# parentheses and nesting depth only by the processor's parser (`condition_expr.py`), which
# `dataflow-processor validate` and the processor's start-up run. Texts that start with `(`, `!` or
# `metadata.` are not `$`-rooted and reach the processor as they are (CEL or compound).
_OPERAND = r"""(\$\.?[A-Za-z0-9_\-#*?\\.]+|metadata\.[A-Za-z0-9_\-.]+)"""
_ATOM = _OPERAND + r"""(\s*(==|!=)\s*('[^']*'|"[^"]*"|[^\s'"()&|!=]+))?"""
_LINKED = r"[\s!(]*" + _ATOM + r"[\s)]*"
COMPOUND_CONDITION = rf"^{_LINKED}((&&|\|\|){_LINKED})*$"
CONDITION_FORMS = ("use `$.path`, `$.path == 'value'`, `$.path != 'value'`, `&&`, `||`, `!` and parentheses over"
                   " those, or CEL")
# Name and address syntax, the same rules as processor/src/dataflow_processor/spec/syntax.py (which
# also checks values resolved from Secrets). Kafka: `host:port` (host name, IPv4 or [IPv6]; port
# 1-65535) and topics of [A-Za-z0-9._-]; PostgreSQL: a comma-separated list of column names, each
# non-empty once trimmed and at most 63 characters.
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
BROKER = rf"^(\[[0-9A-Fa-f:.]+\]|{_LABEL}(\.{_LABEL})*):{_PORT}$"
TOPIC = r"^[A-Za-z0-9._-]+$"
_COLUMN = r"\s*[^,\s]([^,]{0,61}[^,\s])?\s*"
COLUMN_LIST = rf"^{_COLUMN}(,{_COLUMN})*$"
# Copies shipped elsewhere (package data, chart, bundle); all must equal OUT.
COPIES = [REPO / "processor/src/dataflow_processor/admission/data/policy.yaml"]
# The chart ships the same text behind its `validation.enabled` switch.
CHART_TEMPLATE = REPO / "charts/dataflow-operator/templates/validating-admission-policy.yaml"


def alt(block: str, field: str) -> str:
    """`field` or its secret-ref twin is set (and a set list is not empty)."""
    return f"(has({block}.{field}) && size({block}.{field}) > 0) || has({block}.{field}SecretRef)"


# Endpoint rules: (connector type, rule over the block `B`, field named in the message, message).
# Each rule is expanded for B = E.<type> and for B = E.config (the `{type, config}` shape).
# "Required (or its …SecretRef)" comes from the models' markers (spec.common.secret(required=…), the
# same marker the processor's require_one_of reads); the rules below are the ones across fields.
CONNECTOR_RULES: dict[str, list[tuple[str, str, str]]] = {
    "kafka": [
        (f"!has(@B.brokers) || @B.brokers.all(b, b.matches({BROKER!r}))",
         "brokers", "every entry is host:port (a host name, an IPv4 address or an [IPv6] address, and a port "
                    "1-65535)"),
        (f"!has(@B.topic) || size(@B.topic) == 0 || (@B.topic.matches({TOPIC!r}) && "
         "@B.topic != '.' && @B.topic != '..')",
         "topic", "a topic is letters, digits, '.', '_' or '-', and not '.' or '..'"),
        ("!has(@B.sasl) || ((has(@B.sasl.username) || has(@B.sasl.usernameSecretRef)) && "
         "(has(@B.sasl.password) || has(@B.sasl.passwordSecretRef)))",
         "sasl", "username and password are required (or their SecretRefs)"),
        ("!has(@B.tls) || ((has(@B.tls.certFile) || has(@B.tls.certSecretRef)) == "
         "(has(@B.tls.keyFile) || has(@B.tls.keySecretRef)))",
         "tls", "a client certificate and its key go together: set both or neither"),
        ("!has(@B.format) || @B.format != 'avro' || has(@B.schemaRegistry) || has(@B.avroSchema) || "
         "has(@B.avroSchemaSecretRef) || has(@B.avroSchemaFile)",
         "format", "avro needs schemaRegistry, avroSchema, avroSchemaSecretRef or avroSchemaFile"),
        ("!has(@B.securityProtocol) || @B.securityProtocol.startsWith('SASL_') == has(@B.sasl)",
         "securityProtocol", "SASL_PLAINTEXT and SASL_SSL need sasl, PLAINTEXT and SSL take none"),
        ("!has(@B.securityProtocol) || !has(@B.tls) || @B.securityProtocol == 'SSL' || "
         "@B.securityProtocol == 'SASL_SSL'",
         "securityProtocol", "tls is set, so the protocol is SSL or SASL_SSL"),
    ],
    "nessie": [
        ("!has(@B.authenticationType) || @B.authenticationType != 'BEARER' || has(@B.token) || "
         "has(@B.bearerToken) || has(@B.tokenSecretRef)",
         "token", "required when authenticationType is BEARER (or bearerToken, or tokenSecretRef)"),
        ("!has(@B.token) || !has(@B.bearerToken)",
         "bearerToken", "give token or bearerToken, not both (they are one field)"),
        ("!has(@B.authenticationType) || @B.authenticationType != 'BASIC' || (has(@B.basicAuth) && "
         "(has(@B.basicAuth.username) || has(@B.basicAuth.usernameSecretRef)) && "
         "(has(@B.basicAuth.password) || has(@B.basicAuth.passwordSecretRef)))",
         "basicAuth", "username and password are required when authenticationType is BASIC"),
        ("has(@B.accessKeySecretRef) == has(@B.secretAccessKeySecretRef)",
         "accessKeySecretRef", "accessKeySecretRef and secretAccessKeySecretRef go together: set both or neither"),
    ],
}
# Rules of one side only, after that side's required fields.
SOURCE_RULES = [
    ("postgresql", alt("@B", "table") + " || has(@B.query)", "table", "required (or tableSecretRef, or query)"),
    ("trino", alt("@B", "table") + " || has(@B.query)", "table", "required (or tableSecretRef, or query)"),
    *(
        (kind, "!has(@B.orderByColumn) || !has(@B.keyColumn) || @B.orderByColumn == @B.keyColumn",
         "orderByColumn", "another name for keyColumn: give one of the two, or both the same")
        for kind in ("postgresql", "trino")
    ),
]
SINK_RULES = [
    *(
        rule
        for kind in ("postgresql", "trino")
        for rule in (
            (kind, "!has(@B.upsertMode) || !@B.upsertMode || !has(@B.conflictKey) || size(@B.conflictKey) > 0",
             "conflictKey", "must not be empty when upsertMode is on"),
            (kind, f"!has(@B.conflictKey) || size(@B.conflictKey) == 0 || @B.conflictKey.matches({COLUMN_LIST!r})",
             "conflictKey", "a comma-separated list of column names, each non-empty and at most 63 characters"),
        )
    ),
    ("postgresql", "!has(@B.upsertStrategy) || @B.upsertStrategy != 'ifNewer' || (has(@B.upsertMode) && @B.upsertMode)",
     "upsertStrategy", "ifNewer applies to upsertMode: true"),
    ("postgresql", "!has(@B.upsertStrategy) || @B.upsertStrategy != 'ifNewer' || "
                   "(has(@B.upsertVersionColumn) && size(@B.upsertVersionColumn) > 0)",
     "upsertVersionColumn", "required when upsertStrategy is ifNewer"),
    ("postgresql", "!has(@B.softDeleteColumn) || size(@B.softDeleteColumn) == 0 || !has(@B.conflictKey) || "
                   "size(@B.conflictKey) > 0",
     "softDeleteColumn", "needs conflictKey to find the row of a delete"),
]


def required_rules(connector: Connector, side: Side | None) -> list[tuple[str, str, str, str]]:
    """`field` or its …SecretRef is set, for each field the models require on `side` only (or, with
    None, on both sides)."""
    model = connector.source if side != "sink" else connector.sink
    out = []
    for name, info, marker in secret_fields(model):
        if (set(marker.required) == set(BOTH)) if side is None else (marker.required == (side,)):
            alias = info.alias or name
            out.append((connector.type, alt("@B", alias), alias, f"required (or {alias}SecretRef)"))
    return out


ENDPOINT_RULES: list[tuple[str, str, str, str]] = [
    rule for c in CONNECTORS
    for rule in [*required_rules(c, None), *((c.type, *r) for r in CONNECTOR_RULES.get(c.type, []))]
]
SOURCE_ONLY = [r for c in CONNECTORS for r in required_rules(c, "source")] + SOURCE_RULES
SINK_ONLY = [r for c in CONNECTORS for r in required_rules(c, "sink")] + SINK_RULES

# Rules over one transformation `T` (its typed block `X` or `T.config`), path `P`.
TRANSFORM_RULES: list[tuple[str, str, str, str]] = [
    ("flatten", "has(@X.field) && size(@X.field) > 0", "field", "required"),
    ("filter", "has(@X.condition) && size(@X.condition) > 0", "condition", "required"),
    ("filter", f"!has(@X.condition) || !@X.condition.startsWith('$') || @X.condition.matches({ORIGINAL_CONDITION!r})"
               f" || @X.condition.matches({COMPOUND_CONDITION!r})",
     "condition", f"not a valid condition: {CONDITION_FORMS}"),
    ("mask", "has(@X.fields) && size(@X.fields) > 0", "fields", "at least one field is required"),
    ("select", "has(@X.fields) && size(@X.fields) > 0", "fields", "at least one field is required"),
    ("remove", "has(@X.fields) && size(@X.fields) > 0", "fields", "at least one field is required"),
    ("router", "has(@X.routes) && size(@X.routes) > 0", "routes", "at least one route is required"),
    ("router", "!has(@X.routes) || @X.routes.all(r, has(r.condition) && size(r.condition) > 0 && "
               f"(!r.condition.startsWith('$') || r.condition.matches({ORIGINAL_CONDITION!r})"
               f" || r.condition.matches({COMPOUND_CONDITION!r})))",
     "routes", f"every route needs a condition: {CONDITION_FORMS}"),
    ("router", "!has(@X.routes) || @X.routes.all(r, has(r.sink))", "routes", "every route needs a sink"),
]


def endpoint_validations(expr: str, path: str, kind: str, guard: str = "true") -> list[dict[str, str]]:
    """Validations for the endpoint at CEL `expr` (displayed as `path`); `kind` is source|sink."""
    out: list[dict[str, str]] = []

    def add(rule: str, message: str) -> None:
        expression = rule if guard == "true" else f"!({guard}) || {rule}"
        out.append({"expression": expression, "message": message})

    for t in CONNECTOR_TYPES:
        add(f"{expr}.type != '{t}' || has({expr}.{t}) || has({expr}.config)",
            f"{path}.{t}: required when type is {t} (or {path}.config)")
    rules = ENDPOINT_RULES + (SOURCE_ONLY if kind == "source" else SINK_ONLY)
    for t, rule, field, msg in rules:
        for block in (f"{expr}.{t}", f"{expr}.config"):
            shown = block.replace(expr, path)
            add(f"{expr}.type != '{t}' || !has({block}) || ({rule.replace('@B', block)})", f"{shown}.{field}: {msg}")
    return out


def route_sink_validations() -> list[dict[str, str]]:
    """Sink rules for every route sink: the same rules, quantified over transformations and routes."""
    out = []
    for v in endpoint_validations("r.sink", "spec.transformations[*].router.routes[*].sink", "sink"):
        out.append({
            "expression": "!has(object.spec.transformations) || object.spec.transformations.all(t, "
                          "!has(t.router) || !has(t.router.routes) || t.router.routes.all(r, !has(r.sink) || "
                          f"({v['expression']})))",
            "message": v["message"],
        })
    return out


def transform_validations() -> list[dict[str, str]]:
    out = []
    each = "!has(object.spec.transformations) || object.spec.transformations.all(t, {})"
    for t in TRANSFORMATION_TYPES:
        out.append({
            "expression": each.format(f"t.type != '{t}' || has(t.{t}) || has(t.config)"),
            "message": f"spec.transformations[*].{t}: required when type is {t} (or config)",
        })
    for t, rule, field, msg in TRANSFORM_RULES:
        for block in (f"t.{t}", "t.config"):
            shown = "spec.transformations[*]." + block[2:]
            out.append({
                "expression": each.format(f"t.type != '{t}' || !has({block}) || ({rule.replace('@X', block)})"),
                "message": f"{shown}.{field}: {msg}",
            })
    return out


def _ref_paths(node: dict[str, Any], path: list[str]) -> list[list[str]]:
    """Every `…SecretRef` below a block of the CRD schema, as a list of property names."""
    out: list[list[str]] = []
    for key, child in (node.get("properties") or {}).items():
        if key.endswith("SecretRef"):
            out.append([*path, key])
        elif child.get("type") == "object":
            out.extend(_ref_paths(child, [*path, key]))
    return out


# The namespace a secret reference may name: the DataFlow's own. Offline (`validate` on a file with
# no metadata.namespace) the namespace is unknown, so only an omitted one passes.
OWN_NAMESPACE = "has(object.metadata.namespace) && {ref}.namespace == object.metadata.namespace"


def _ref_in_own_namespace(block: str, path: list[str]) -> str:
    guards = [f"!has({block}.{'.'.join(path[:i])})" for i in range(1, len(path) + 1)]
    ref = f"{block}.{'.'.join(path)}"
    own = OWN_NAMESPACE.format(ref=ref)
    return "(" + " || ".join([*guards, f"!has({ref}.namespace)", f"{ref}.namespace == ''", f"({own})"]) + ")"


def secret_namespace_validations() -> list[dict[str, str]]:
    """A secret reference names a Secret of the DataFlow's own namespace, or no namespace at all.

    The operator may read every namespace's Secrets; honouring `namespace: other` would copy another
    tenant's secret into this one's processor. One rule per settings block (a rule per reference
    would be 288 expressions); the message names the block, the operator's own check (which also
    covers route sinks in the `{type, config}` shape) names the exact field.
    """
    endpoint = gen_crd.endpoint("Sink")["properties"]
    out = []
    places = [("object.spec.source", "spec.source", "true"), ("object.spec.sink", "spec.sink", "true"),
              ("object.spec.errors", "spec.errors", "has(object.spec.errors)"),
              ("r.sink", "spec.transformations[*].router.routes[*].sink", "true")]
    for expr, shown, guard in places:
        for t in [*CONNECTOR_TYPES, "config"]:
            block = f"{expr}.{t}"
            checks = " && ".join(_ref_in_own_namespace(block, p) for p in _ref_paths(endpoint[t], []))
            rule = f"!has({block}) || ({checks})"
            if expr == "r.sink":
                rule = ("!has(object.spec.transformations) || object.spec.transformations.all(t, !has(t.router) || "
                        f"!has(t.router.routes) || t.router.routes.all(r, !has(r.sink) || ({rule})))")
            elif guard != "true":
                rule = f"!({guard}) || {rule}"
            out.append({"expression": rule,
                        "message": f"{shown}.{t}.*SecretRef.namespace: a secret reference may only name a Secret in "
                                   "the DataFlow's own namespace (omit namespace)"})
    return out


def object_validations() -> list[dict[str, str]]:
    """What the API server would refuse later, in one of the objects the operator makes."""
    return [{
        # The name is the value of the processor pod's `dataflow.dataflow.io/name` label.
        "expression": "!has(object.metadata.name) || size(object.metadata.name) <= 63",
        "message": "metadata.name: at most 63 characters (it labels the processor's pods)",
    }]


def resource_validations() -> list[dict[str, str]]:
    out = []
    for kind in ("limits", "requests"):
        r = f"object.spec.resources.{kind}"
        out.append({
            "expression": f"!has(object.spec.resources) || !has({r}) || "
                          f"{r}.all(k, !string({r}[k]).startsWith('-'))",
            "message": f"spec.resources.{kind}: resource quantity must not be negative",
        })
    req, lim = "object.spec.resources.requests", "object.spec.resources.limits"
    out.append({
        "expression": f"!has(object.spec.resources) || !has({req}) || !has({lim}) || {req}.all(k, !(k in {lim}) || "
                      f"!isQuantity(string({req}[k])) || !isQuantity(string({lim}[k])) || "
                      f"quantity(string({req}[k])).compareTo(quantity(string({lim}[k]))) <= 0)",
        "message": "spec.resources.requests: a request must not exceed its limit",
    })
    return out




def router_count_validations() -> list[dict[str, str]]:
    return [{
        "expression": "!has(object.spec.transformations) || "
                      f"object.spec.transformations.filter(t, t.type == 'router').size() <= {MAX_ROUTERS}",
        "message": f"spec.transformations: at most {MAX_ROUTERS} router transformations "
                   f"(at most {MAX_ROUTERS * MAX_ROUTES} route sinks) in one DataFlow",
    }]


def validations() -> list[dict[str, str]]:
    return (
        endpoint_validations("object.spec.source", "spec.source", "source")
        + endpoint_validations("object.spec.sink", "spec.sink", "sink")
        + endpoint_validations("object.spec.errors", "spec.errors", "sink", guard="has(object.spec.errors)")
        + transform_validations()
        + route_sink_validations()
        + router_count_validations()
        + secret_namespace_validations()
        + object_validations()
        + resource_validations()
    )


def policy() -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/name": "dataflow-operator"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["dataflow.dataflow.io"], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["dataflows"],
            }]},
            # An update that leaves the spec alone (finalizers, labels) is never blocked, so objects
            # stored before a rule existed can still be cleaned up.
            "matchConditions": [{
                "name": "spec-changed",
                "expression": "request.operation == 'CREATE' || oldObject == null || "
                              "!has(oldObject.spec) || object.spec != oldObject.spec",
            }],
            "validations": validations(),
        },
    }


def binding() -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/name": "dataflow-operator"}},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }


HEADER = "# Generated by scripts/gen_policy.py — the one place the admission rules are written.\n"


def render() -> str:
    return HEADER + yaml.safe_dump_all([policy(), binding()], sort_keys=False, width=4096, allow_unicode=True)


def outputs(text: str) -> list[tuple[Path, str]]:
    chart = "{{- if .Values.validation.enabled }}\n" + text + "{{- end }}\n"
    return [(OUT, text), *((p, text) for p in COPIES), (CHART_TEMPLATE, chart)]


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
