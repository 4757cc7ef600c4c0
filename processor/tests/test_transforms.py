"""Every transformation: the documented examples (docs/spec-reference.md, docs/compatibility.md) and each fixed bug."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import pytest

from dataflow_processor.records import Position, Record
from dataflow_processor.transforms.camel_case import to_camel
from dataflow_processor.transforms.snake_case import to_snake
from dfp_helpers import apply, chain_of, run_chain

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class TestTimestamp:
    def test_default_field_and_rfc3339(self) -> None:
        [out] = apply({"type": "timestamp", "timestamp": {}}, {"id": 1})
        assert out["id"] == 1
        assert RFC3339.match(out["created_at"])

    def test_named_format_is_mapped_not_printed(self) -> None:  # original printed "RFC3339"
        [out] = apply({"type": "timestamp", "timestamp": {"fieldName": "t", "format": "RFC3339"}}, {})
        assert out["t"] != "RFC3339" and RFC3339.match(out["t"])

    @pytest.mark.parametrize(("fmt", "low", "high"), [("Unix", 1.6e9, 5e9), ("UnixMilli", 1.6e12, 5e12)])
    def test_epoch_formats_are_numbers(self, fmt: str, low: float, high: float) -> None:
        [out] = apply({"type": "timestamp", "timestamp": {"fieldName": "t", "format": fmt}}, {})
        assert isinstance(out["t"], int) and low < out["t"] < high

    def test_rfc3339nano_and_go_layout(self) -> None:
        [out] = apply({"type": "timestamp", "timestamp": {"fieldName": "t", "format": "2006-01-02 15:04:05"}}, {})
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", out["t"])
        [out] = apply({"type": "timestamp", "timestamp": {"fieldName": "t", "format": "RFC3339Nano"}}, {})
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$", out["t"])

    def test_dotted_field_creates_nesting_and_overwrites(self) -> None:
        [out] = apply({"type": "timestamp", "timestamp": {"fieldName": "$.meta.at"}}, {"meta": {"at": "old", "k": 1}})
        assert out["meta"]["k"] == 1 and out["meta"]["at"] != "old"

    def test_unknown_format_name_is_a_spec_error(self) -> None:
        with pytest.raises(ValueError, match="ISO8601"):
            chain_of({"type": "timestamp", "timestamp": {"format": "ISO8601"}})


class TestFlatten:
    def test_objects_merge_into_root_and_override(self) -> None:
        value = {"o": 7, "items": [{"sku": "A"}, {"sku": "B", "o": 9}], "tags": ["x"]}
        out = apply({"type": "flatten", "flatten": {"field": "items"}}, value)
        assert out == [{"o": 7, "sku": "A", "tags": ["x"]}, {"o": 9, "sku": "B", "tags": ["x"]}]

    def test_scalars_stay_under_the_field(self) -> None:
        out = apply({"type": "flatten", "flatten": {"field": "$.tags"}}, {"id": 1, "tags": ["x", "y"]})
        assert out == [{"id": 1, "tags": "x"}, {"id": 1, "tags": "y"}]

    def test_missing_or_scalar_passes_unchanged(self) -> None:
        spec = {"type": "flatten", "flatten": {"field": "items"}}
        assert apply(spec, {"id": 1}) == [{"id": 1}]
        assert apply(spec, {"id": 1, "items": 5}) == [{"id": 1, "items": 5}]

    def test_empty_array_gives_one_record_without_it(self) -> None:
        assert apply({"type": "flatten", "flatten": {"field": "items"}}, {"id": 1, "items": []}) == [{"id": 1}]

    def test_avro_array_wrapper(self) -> None:
        out = apply({"type": "flatten", "flatten": {"field": "items"}}, {"id": 1, "items": {"array": [{"a": 1}]}})
        assert out == [{"id": 1, "a": 1}]

    def test_nested_path_removes_only_the_array_from_its_parent(self) -> None:
        value = {"id": 1, "order": {"no": 42, "items": [{"sku": "A"}, {"sku": "B"}]}}
        out = apply({"type": "flatten", "flatten": {"field": "order.items"}}, value)
        assert out == [{"id": 1, "order": {"no": 42}, "sku": "A"}, {"id": 1, "order": {"no": 42}, "sku": "B"}]
        assert value["order"]["items"] == [{"sku": "A"}, {"sku": "B"}]  # input not mutated

    def test_nested_scalars_go_back_to_the_nested_path(self) -> None:
        out = apply({"type": "flatten", "flatten": {"field": "a.tags"}}, {"a": {"k": 1, "tags": ["x", "y"]}})
        assert out == [{"a": {"k": 1, "tags": "x"}}, {"a": {"k": 1, "tags": "y"}}]

    def test_children_share_position_and_token(self) -> None:
        chain = chain_of({"type": "flatten", "flatten": {"field": "items"}})
        parent = Record({"items": [1, 2, 3]}, position=Position(0, 5))
        out, _ = chain.run([parent])
        assert len(out) == 3 and {r.position for r in out} == {Position(0, 5)}


class TestFilter:
    def test_truthiness_example(self) -> None:
        spec = {"type": "filter", "filter": {"condition": "active"}}
        assert apply(spec, {"active": True}, {"active": "false"}, {}) == [{"active": True}]

    def test_dollar_path_works(self) -> None:  # the original's code dropped everything for "$.active"
        spec = {"type": "filter", "filter": {"condition": "$.active"}}
        assert apply(spec, {"active": True, "id": 1}, {"active": 0}) == [{"active": True, "id": 1}]

    def test_comparison_and_cel(self) -> None:
        assert apply(
            {"type": "filter", "filter": {"condition": "$.status == 'paid'"}}, {"status": "paid"}, {"status": "new"}
        ) == [{"status": "paid"}]
        assert apply(
            {"type": "filter", "filter": {"condition": "amount >= 10"}}, {"amount": 10}, {"amount": 9}, {"x": 1}
        ) == [{"amount": 10}]


class TestMask:
    def test_keep_length_example(self) -> None:
        spec = {"type": "mask", "mask": {"fields": ["pin", "u.pw"], "keepLength": True}}
        assert apply(spec, {"pin": 1234, "u": {"pw": "abc"}}) == [{"pin": "****", "u": {"pw": "***"}}]

    def test_fixed_length_and_mask_char(self) -> None:
        spec = {"type": "mask", "mask": {"fields": ["$.card"], "maskChar": "#"}}
        assert apply(spec, {"card": "4111111111111111"}) == [{"card": "###"}]

    def test_counts_characters_not_bytes(self) -> None:  # the original counted UTF-8 bytes
        spec = {"type": "mask", "mask": {"fields": ["pw"], "keepLength": True}}
        assert apply(spec, {"pw": "пароль"}) == [{"pw": "******"}]

    def test_missing_paths_skipped_and_wildcards(self) -> None:
        spec = {"type": "mask", "mask": {"fields": ["nope", "cards.#.n"]}}
        assert apply(spec, {"cards": [{"n": "1"}, {"n": "2"}]}) == [{"cards": [{"n": "***"}, {"n": "***"}]}]


class TestRouter:
    SPEC: ClassVar[dict[str, Any]] = {
        "type": "router",
        "router": {
            "routes": [
                {"condition": "$.type == 'a'", "sink": {"type": "kafka", "kafka": {"brokers": ["k:1"], "topic": "a"}}},
                {"condition": "$.type == 'a'", "sink": {"type": "kafka", "kafka": {"brokers": ["k:1"], "topic": "a2"}}},
                {"condition": "$.vip", "sink": {"type": "kafka", "kafka": {"brokers": ["k:1"], "topic": "v"}}},
            ]
        },
    }

    def test_first_match_wins_and_metadata_names_the_condition(self) -> None:
        chain = chain_of(self.SPEC)
        out, _ = chain.run([Record({"type": "a", "vip": True}), Record({"type": "b", "vip": 1}), Record({"x": 1})])
        assert [r.route for r in out] == [0, 2, None]  # never drops; no match → main sink
        assert out[0].metadata["routed_condition"] == "$.type == 'a'"
        assert "routed_condition" not in out[2].metadata

    def test_duplicate_conditions_get_distinct_routes(self) -> None:
        chain = chain_of(self.SPEC)
        assert [r.route_id for r in chain.routes] == [0, 1, 2]
        assert chain.routes[1].condition == chain.routes[0].condition

    def test_code_matches_number(self) -> None:
        spec = {
            "type": "router",
            "router": {
                "routes": [
                    {
                        "condition": "$.code == '200'",
                        "sink": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "ok"}},
                    }
                ]
            },
        }
        out, _ = chain_of(spec).run([Record({"code": 200})])
        assert out[0].route == 0


class TestConditionsOnMetadata:
    """Filter and router conditions with ``metadata.`` paths read the record's metadata; the others
    never touch it (a Kafka record builds its metadata only when asked)."""

    @staticmethod
    def kafka_like(value: dict[str, Any], topic: str, partition: int) -> Record:
        return Record(value, metadata={"topic": topic, "partition": partition, "offset": 0})

    def test_filter_on_metadata_and_value(self) -> None:
        chain = chain_of({"type": "filter", "filter": {"condition": "metadata.partition == 1 && $.ok"}})
        out, failures = chain.run([self.kafka_like({"ok": True, "n": 1}, "t", 1),
                                   self.kafka_like({"ok": True, "n": 2}, "t", 2),
                                   self.kafka_like({"ok": False, "n": 3}, "t", 1)])
        assert not failures and [r.value["n"] for r in out] == [1]  # type: ignore[index]

    def test_router_on_metadata(self) -> None:
        sink = {"type": "kafka", "kafka": {"brokers": ["k:1"], "topic": "audit"}}
        chain = chain_of({"type": "router", "router": {"routes": [
            {"condition": "metadata.topic == 'audit-in' || $.audit", "sink": sink}]}})
        out, _ = chain.run([self.kafka_like({"n": 1}, "audit-in", 0), self.kafka_like({"n": 2}, "orders", 0),
                            self.kafka_like({"n": 3, "audit": True}, "orders", 0)])
        assert [r.route for r in out] == [0, None, 0]

    def test_value_only_conditions_never_read_metadata(self) -> None:
        class NoMetadata(Record):
            __slots__ = ()

            @property
            def metadata(self) -> Any:
                raise AssertionError("metadata was read")

            @metadata.setter
            def metadata(self, value: Any) -> None:
                pass  # Record.__init__ sets it; only reading it is the fault

        chain = chain_of({"type": "filter", "filter": {"condition": "$.ok && !($.n == 2)"}})
        out, failures = chain.run([NoMetadata({"ok": True, "n": 1}), NoMetadata({"ok": True, "n": 2})])
        assert not failures and [r.value["n"] for r in out] == [1]  # type: ignore[index]


class TestSelect:
    def test_flat_output_example(self) -> None:
        spec = {"type": "select", "select": {"fields": ["user.id", "user.name"]}}
        assert apply(spec, {"user": {"id": 5, "name": "Al"}, "x": 1}) == [{"id": 5, "name": "Al"}]

    def test_dollar_paths_and_nothing_matched(self) -> None:  # original did not strip "$." in select
        spec = {"type": "select", "select": {"fields": ["$.a", "$.b"]}}
        assert apply(spec, {"a": 1, "c": 2}) == [{"a": 1}]
        assert apply(spec, {"z": 1}) == [{"z": 1}]

    def test_colliding_last_segment_last_wins(self) -> None:
        spec = {"type": "select", "select": {"fields": ["a.id", "b.id"]}}
        assert apply(spec, {"a": {"id": 1}, "b": {"id": 2}}) == [{"id": 2}]


class TestRemove:
    def test_nested_example(self) -> None:
        assert apply({"type": "remove", "remove": {"fields": ["a.b"]}}, {"a": {"b": 1, "c": 2}}) == [{"a": {"c": 2}}]

    def test_top_level_array_index_and_missing(self) -> None:
        spec = {"type": "remove", "remove": {"fields": ["$.x", "l.0", "nope.deep"]}}
        assert apply(spec, {"x": 1, "l": [1, 2], "k": 3}) == [{"l": [2], "k": 3}]


class TestSnakeCase:
    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            ("userID", "user_id"),
            ("XMLHttpRequest", "xml_http_request"),
            ("Item2Name", "item2_name"),
            ("already_snake", "already_snake"),
            ("firstName", "first_name"),
            ("a-B", "a-b"),
        ],
    )
    def test_examples(self, key: str, expected: str) -> None:
        assert to_snake(key) == expected

    def test_shallow_and_deep(self) -> None:
        value = {"userID": 1, "Inner": {"fooBar": [{"bazQux": 1}]}}
        assert apply({"type": "snakeCase", "snakeCase": {}}, dict(value)) == [
            {"user_id": 1, "inner": {"fooBar": [{"bazQux": 1}]}}
        ]
        assert apply({"type": "snakeCase", "snakeCase": {"deep": True}}, dict(value)) == [
            {"user_id": 1, "inner": {"foo_bar": [{"baz_qux": 1}]}}
        ]


class TestCamelCase:
    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            ("first_name", "FirstName"),
            ("id", "Id"),
            ("userName", "UserName"),
            ("__x", "X"),
        ],
    )
    def test_examples(self, key: str, expected: str) -> None:
        assert to_camel(key) == expected

    def test_deep(self) -> None:
        assert apply({"type": "camelCase", "config": {"deep": True}}, {"a_b": [{"c_d": 1}]}) == [{"AB": [{"CD": 1}]}]


class TestChain:
    def test_parse_failures_and_non_objects(self) -> None:
        out, failures = run_chain(
            chain_of({"type": "select", "select": {"fields": ["a"]}}), b'{"a":1,"b":2}', b"not json", b"[1,2]"
        )
        assert out == [{"a": 1}]
        assert [(f.stage, f.record.raw) for f in failures] == [("parse", b"not json"), ("parse", b"[1,2]")]

    def test_transform_failure_names_index_and_type(self) -> None:
        chain = chain_of(
            {"type": "remove", "remove": {"fields": ["x"]}}, {"type": "timestamp", "timestamp": {"fieldName": "a.b"}}
        )
        out, failures = run_chain(chain, {"a": [1]}, {"a": {}})
        assert len(out) == 1
        assert [(f.stage, f.transform_index, f.transform_type) for f in failures] == [("transform", 1, "timestamp")]

    def test_order_is_as_listed(self) -> None:
        chain = chain_of({"type": "snakeCase", "snakeCase": {}}, {"type": "select", "select": {"fields": ["user_id"]}})
        assert run_chain(chain, {"userId": 1, "x": 2})[0] == [{"user_id": 1}]
