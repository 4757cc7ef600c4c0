"""Spec models: both shapes, strictness with field paths, defaults, secrets merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataflow_processor.spec import DataFlowSpec, SpecError, load_spec, parse_spec
from dataflow_processor.spec.connectors import KafkaSourceConfig, PostgresSinkConfig
from dataflow_processor.spec.secrets import SecretMergeError, merge_secret_values, read_secret_values

EXAMPLE = Path(__file__).parent.parent / "examples" / "kafka-to-postgres.yaml"

BASE = {
    "source": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "orders"}},
    "sink": {"type": "postgresql", "postgresql": {"connectionString": "postgres://x", "table": "t"}},
}


def with_(**changes: object) -> dict:
    return {**json.loads(json.dumps(BASE)), **changes}


def problems(doc: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(doc)
    return info.value.problems


def test_canonical_and_config_shapes_are_equivalent() -> None:
    canonical = parse_spec(BASE)
    config_shape = parse_spec(
        {
            "source": {"type": "kafka", "config": {"brokers": ["k:9092"], "topic": "orders"}},
            "sink": {"type": "postgresql", "config": {"connectionString": "postgres://x", "table": "t"}},
        }
    )
    assert canonical == config_shape
    assert isinstance(canonical.source.config, KafkaSourceConfig)


def test_defaults_from_the_original() -> None:
    spec = parse_spec(BASE)
    assert spec.source.config.consumer_group == "dataflow-operator"  # type: ignore[attr-defined]
    sink = spec.sink.config
    assert isinstance(sink, PostgresSinkConfig)
    assert (sink.batch_size, sink.conflict_key, sink.upsert_mode) == (1000, "id", False)


def test_unknown_field_is_an_error_with_its_path() -> None:
    doc = with_(transformations=[{"type": "mask", "mask": {"fields": ["a"], "keeplength": True}}])
    assert problems(doc) == ["spec.transformations.0.mask.keeplength: unknown field"]
    assert problems(with_(sinkk={})) == ["spec.sinkk: unknown field"]


def test_kubernetes_types_are_free_form() -> None:
    spec = parse_spec(
        with_(
            resources={"limits": {"cpu": "1"}, "anything": 1},
            nodeSelector={"a": "b"},
            tolerations=[{"key": "k", "operator": "Exists"}],
            affinity={"nodeAffinity": {}},
        )
    )
    assert spec.node_selector == {"a": "b"}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"source": {"type": "kafka"}}, "spec.source: kafka source configuration is required"),
        ({"source": {"type": "nope", "nope": {}}}, 'spec.source: Unsupported value: "nope"'),
        (
            {"source": {"type": "kafka", "kafka": {"topic": "t"}}},
            "spec.source.kafka: brokers or brokersSecretRef is required",
        ),
        ({"source": {"type": "kafka", "kafka": {"brokers": ["b"], "topic": "t"}, "config": {}}}, "not both"),
        ({"source": {"type": "kafka", "kafka": {"brokers": ["b"], "topic": "t"}, "trino": {}}}, "block(s) trino"),
    ],
)
def test_source_errors_name_the_field(doc: dict, expected: str) -> None:
    found = problems(with_(**doc))
    assert any(p.startswith(expected) or expected in p for p in found), found


def test_transformation_rules() -> None:
    assert any(
        "spec.transformations.0.flatten.field" in p
        for p in problems(with_(transformations=[{"type": "flatten", "flatten": {"field": ""}}]))
    )
    assert any(
        "spec.transformations.0: filter transformation configuration is required" in p
        for p in problems(with_(transformations=[{"type": "filter"}]))
    )
    route_sink_problem = problems(
        with_(
            transformations=[
                {
                    "type": "router",
                    "router": {
                        "routes": [{"condition": "$.a", "sink": {"type": "postgresql", "postgresql": {"table": "t"}}}]
                    },
                }
            ]
        )
    )
    assert any(p.startswith("spec.transformations.0.router.routes.0.sink.postgresql") for p in route_sink_problem)


def test_nessie_rules() -> None:
    nessie = {
        "type": "nessie",
        "nessie": {"baseURL": "http://n", "namespace": "ns", "table": "t", "authenticationType": "BEARER"},
    }
    assert any("BEARER needs token" in p for p in problems(with_(sink=nessie)))
    nessie["nessie"] = {**nessie["nessie"], "token": "x", "accessKeySecretRef": {"name": "s", "key": "k"}}
    assert any("both or neither" in p for p in problems(with_(sink=nessie)))


@pytest.mark.parametrize("shape", ["nessie", "config"])
def test_nessie_bearer_token_is_the_token(shape: str) -> None:
    """The Go project names the field bearerToken (twin tokenSecretRef); both shapes accept it."""
    fields = {"baseURL": "http://n", "namespace": "ns", "table": "t", "authenticationType": "BEARER",
              "bearerToken": "tok"}
    spec = DataFlowSpec.model_validate(with_(sink={"type": "nessie", shape: fields}))
    assert spec.sink.config.token == "tok"  # type: ignore[attr-defined]
    both = {**fields, "token": "other"}
    assert any("not both" in p for p in problems(with_(sink={"type": "nessie", shape: both})))


def test_secret_ref_needs_name_and_key() -> None:
    doc = with_(source={"type": "kafka", "kafka": {"brokersSecretRef": {"name": "", "key": "b"}, "topic": "t"}})
    assert any("secret name is required" in p for p in problems(doc))


def test_route_sinks_and_all_sinks_are_listed() -> None:
    spec = DataFlowSpec.model_validate(
        with_(
            errors=BASE["sink"],
            transformations=[{"type": "router", "router": {"routes": [{"condition": "$.a", "sink": BASE["sink"]}]}}],
        )
    )
    assert [path for path, _ in spec.sinks()] == ["sink", "errors", "transformations.0.router.routes.0.sink"]


# ---------------------------------------------------------------- secrets


REFS = {
    "source": {
        "type": "kafka",
        "config": {
            "brokersSecretRef": {"name": "k", "key": "b"},
            "topic": "orders",
            "sasl": {"username": "u", "passwordSecretRef": {"name": "k", "key": "p"}},
        },
    },
    "sink": {
        "type": "postgresql",
        "postgresql": {"connectionStringSecretRef": {"name": "pg", "key": "dsn"}, "table": "t"},
    },
    "transformations": [
        {
            "type": "router",
            "router": {
                "routes": [
                    {
                        "condition": "$.a",
                        "sink": {
                            "type": "postgresql",
                            "postgresql": {"connectionStringSecretRef": {"name": "pg", "key": "dsn"}, "table": "a"},
                        },
                    }
                ]
            },
        }
    ],
}
VALUES = {
    "source.kafka.brokers": "k1:9092, k2:9092,",
    "source.kafka.sasl.password": "s3cret",
    "sink.postgresql.connectionString": "postgres://main",
    "transformations.0.router.routes.0.sink.postgresql.connectionString": "postgres://route",
}


def write_spec(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc))
    return path


def test_secret_dir_is_merged(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "..data").mkdir()  # what a Kubernetes Secret volume also contains
    for key, value in VALUES.items():
        (secrets / key).write_text(value)
    spec = load_spec(write_spec(tmp_path, REFS), secrets)
    assert spec.source.config.brokers == ["k1:9092", "k2:9092"]  # type: ignore[attr-defined]
    assert spec.source.config.sasl.password == "s3cret"  # type: ignore[attr-defined]
    assert spec.sink.config.connection_string == "postgres://main"  # type: ignore[attr-defined]
    [(_p, _t, _r, _c, route_sink)] = list(spec.route_sinks())
    assert route_sink.config.connection_string == "postgres://route"  # type: ignore[attr-defined]


def test_secret_json_file_is_merged(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps(VALUES))
    assert read_secret_values(secrets) == VALUES
    assert load_spec(write_spec(tmp_path, REFS), secrets).sink.config.connection_string == "postgres://main"  # type: ignore[attr-defined]


def test_missing_secret_value_names_the_field(tmp_path: Path) -> None:
    values = dict(VALUES)
    del values["sink.postgresql.connectionString"]
    secrets = tmp_path / "s.json"
    secrets.write_text(json.dumps(values))
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path, REFS), secrets)
    assert info.value.problems == [
        "spec.sink.postgresql.connectionString: connectionStringSecretRef is set but its value was not provided "
        "(no secret key sink.postgresql.connectionString)"
    ]
    # structurally (validate / preview) unresolved refs are fine
    assert load_spec(write_spec(tmp_path, REFS), None, require_resolved=False)


def test_secret_key_without_a_ref_is_rejected() -> None:
    with pytest.raises(SecretMergeError, match=r"sink\.postgresql\.table"):
        merge_secret_values(REFS, {"sink.postgresql.table": "x"})
    with pytest.raises(SecretMergeError, match="no field 'kafak'"):
        merge_secret_values(REFS, {"source.kafak.brokers": "x"})


def test_example_manifest_loads() -> None:
    spec = load_spec(EXAMPLE, None, require_resolved=False)
    assert spec.errors is not None and spec.errors.type == "kafka"


# ---------------------------------------------------------------------------- name and address syntax


def _kafka_doc(**kafka: object) -> dict:
    return {
        "source": {"type": "kafka", "kafka": {"brokers": ["kafka:9092"], "topic": "orders", **kafka}},
        "sink": {"type": "postgresql", "postgresql": {"connectionString": "postgres://h/db", "table": "t"}},
    }


@pytest.mark.parametrize(
    "brokers",
    [
        ["kafka"],
        ["kafka:0"],
        ["kafka:65536"],
        ["kafka:09092"],
        ["-kafka:9092"],
        ["kafka-:9092"],
        ["a..b:1"],
        ["kafka:9092", "http://kafka:9092"],
        ["[::1:9092"],
        ["kafka :9092"],
    ],
)
def test_a_broker_must_be_host_and_port(brokers: list[str]) -> None:
    found = problems(_kafka_doc(brokers=brokers))
    assert len(found) == 1 and found[0].startswith("spec.source.kafka.brokers: entry "), found
    assert "is not host:port" in found[0]


@pytest.mark.parametrize(
    "brokers", [["kafka:9092"], ["kafka-0.kafka.svc.cluster.local:9092", "10.0.0.1:1", "[fd00::1]:65535", "k_1:80"]]
)
def test_brokers_in_host_and_port_form_are_accepted(brokers: list[str]) -> None:
    parse_spec(_kafka_doc(brokers=brokers))


def test_a_broker_list_from_a_secret_is_checked_without_showing_it(tmp_path: Path) -> None:
    doc = _kafka_doc(brokersSecretRef={"name": "kafka", "key": "brokers"})
    del doc["source"]["kafka"]["brokers"]
    spec, secrets = tmp_path / "spec.json", tmp_path / "secrets.json"
    spec.write_text(json.dumps(doc))
    secrets.write_text(json.dumps({"source.kafka.brokers": "kafka-0:9092, s3cr3t-host"}))
    with pytest.raises(SpecError) as refused:
        load_spec(spec, secrets)
    assert "spec.source.kafka.brokers: entry 2 is not host:port" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)


@pytest.mark.parametrize("topic", ["orders/eu", "a b", ".", "..", "t" * 250, "zürich"])
def test_a_topic_has_kafka_syntax(topic: str) -> None:
    found = problems(_kafka_doc(topic=topic))
    assert found and found[0].startswith("spec.source.kafka.topic: "), found


@pytest.mark.parametrize("topic", ["orders", "orders.eu_v-2", "...", "t" * 249])
def test_kafka_topics_are_accepted(topic: str) -> None:
    parse_spec(_kafka_doc(topic=topic))


def _pg_sink(conflict_key: str) -> dict:
    doc = _kafka_doc()
    doc["sink"]["postgresql"].update(upsertMode=True, conflictKey=conflict_key)
    return doc


@pytest.mark.parametrize("key", ["id,,tenant", ",id", "id,", " , ", "x" * 64, "a\x00b"])
def test_conflict_key_is_a_list_of_column_names(key: str) -> None:
    found = problems(_pg_sink(key))
    assert found and found[0].startswith("spec.sink.postgresql.conflictKey: a comma-separated list of column names")


@pytest.mark.parametrize("key", ["id", "id, tenant_id", "Order Id,x", "x" * 63])
def test_conflict_keys_are_accepted(key: str) -> None:
    parse_spec(_pg_sink(key))
