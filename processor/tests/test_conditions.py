import pytest

from dataflow_processor.conditions import ConditionError, compile_condition, is_truthy, string_form
from dataflow_processor.paths import MISSING


def matches(text: str, value: dict) -> bool:
    return compile_condition(text).predicate(value)


@pytest.mark.parametrize("text", ["$.active", "active", "$active"])
def test_truthiness_accepts_dollar_forms(text: str) -> None:
    assert compile_condition(text).kind == "truthy"
    assert matches(text, {"active": True})
    assert not matches(text, {"active": "false"})
    assert not matches(text, {})


@pytest.mark.parametrize("value", [False, None, 0, 0.0, "", "false", MISSING])
def test_falsy_values(value: object) -> None:
    assert not is_truthy(value)


@pytest.mark.parametrize("value", [True, 1, "yes", "0", {}, [], {"a": 1}, [0]])
def test_truthy_values(value: object) -> None:
    assert is_truthy(value)


def test_comparison_uses_string_form_like_the_original() -> None:
    assert matches("$.code == '200'", {"code": 200})
    assert matches('$.status == "paid"', {"status": "paid"})
    assert matches("$.code == 200", {"code": 200})  # unquoted literal (was "" in the baseline)
    assert matches("$.paid == true", {"paid": True})
    assert not matches("$.status != 'paid'", {"status": "paid"})
    assert matches("$.status != 'paid'", {})
    assert matches("$.a.b == 'x'", {"a": {"b": "x"}})
    assert matches("$.name == 'it\\'s'", {"name": "it's"})


def test_string_form() -> None:
    assert string_form(1.5) == "1.5"
    assert string_form(None) == ""
    assert string_form({"a": 1}) == '{"a":1}'


def test_cel_for_richer_expressions() -> None:
    cond = compile_condition("amount > 100 && status in ['paid', 'sent']")
    assert cond.kind == "cel"
    assert cond.predicate({"amount": 150, "status": "sent"})
    assert not cond.predicate({"amount": 50, "status": "sent"})
    assert not cond.predicate({"status": "sent"})  # missing field → no match
    assert compile_condition("has(record.x) && record.x.y == 1").predicate({"x": {"y": 1}})


def test_invalid_condition_is_rejected_at_compile_time() -> None:
    with pytest.raises(ConditionError):
        compile_condition("$.a == ")
    with pytest.raises(ConditionError):
        compile_condition("  ")
