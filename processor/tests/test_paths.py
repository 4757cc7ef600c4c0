import pytest

from dataflow_processor.paths import MISSING, compile_path, split_path, strip_root


@pytest.mark.parametrize(("text", "expected"), [("$.a.b", "a.b"), ("$a", "a"), ("a", "a"), ("  $.x ", "x")])
def test_root_is_always_stripped(text: str, expected: str) -> None:
    assert strip_root(text) == expected


def test_escaped_dot_is_part_of_the_key() -> None:
    assert split_path(r"a\.b.c") == ("a.b", "c")
    assert compile_path(r"a\.b").get({"a.b": 1, "a": {"b": 2}}) == 1


def test_get_nested_and_array_index() -> None:
    doc = {"items": [{"sku": "A"}, {"sku": "B"}], "u": {"id": 5}}
    assert compile_path("items.1.sku").get(doc) == "B"
    assert compile_path("$.u.id").get(doc) == 5
    assert compile_path("items.5.sku").get(doc) is MISSING
    assert compile_path("u.id.x").get(doc) is MISSING


def test_hash_wildcard_and_count() -> None:
    doc = {"items": [{"sku": "A"}, {"sku": "B"}, {"n": 1}]}
    assert compile_path("items.#.sku").get(doc) == ["A", "B"]
    assert compile_path("items.#").get(doc) == 3


def test_glob_segment() -> None:
    doc = {"user": {"password": "x", "passcode": "y", "name": "n"}}
    assert sorted(k for _c, k in compile_path("user.pass*").locate(doc)) == ["passcode", "password"]


def test_set_creates_objects_and_delete_handles_lists() -> None:
    doc: dict = {}
    compile_path("a.b.c").set(doc, 1)
    assert doc == {"a": {"b": {"c": 1}}}
    doc = {"l": [1, 2, 3], "a": {"b": 1}}
    assert compile_path("l.1").delete(doc) == 1
    assert doc["l"] == [1, 3]
    assert compile_path("a.zz").delete(doc) == 0


def test_bracket_index_is_not_syntax() -> None:
    assert compile_path("items[0]").get({"items": [1]}) is MISSING


def test_empty_path_rejected() -> None:
    with pytest.raises(ValueError):
        compile_path("$.")
    with pytest.raises(ValueError):
        compile_path("a..b")
