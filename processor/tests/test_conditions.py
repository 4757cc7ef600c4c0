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


def test_comparison_uses_the_string_form() -> None:
    assert matches("$.code == '200'", {"code": 200})
    assert matches('$.status == "paid"', {"status": "paid"})
    assert matches("$.code == 200", {"code": 200})  # unquoted literal (was "" in the baseline)
    assert matches("$.paid == true", {"paid": True})
    assert not matches("$.status != 'paid'", {"status": "paid"})
    assert matches("$.a.b == 'x'", {"a": {"b": "x"}})
    assert matches("$.name == 'it\\'s'", {"name": "it's"})


@pytest.mark.parametrize("text", ["$.status != 'deleted'", "$.status == ''", "$.a.b != 'x'", "$.a.b == ''",
                                  "$.items.3 != 'x'", "status != deleted"])
@pytest.mark.parametrize("record", [{}, {"a": {}}, {"items": [1]}, {"a": 1}])
def test_a_missing_field_fails_every_comparison(text: str, record: dict) -> None:
    """Neither ``==`` nor ``!=`` matches a field the record does not have (it is not compared as "")."""
    assert not matches(text, record)


def test_a_present_null_still_compares_as_empty() -> None:
    assert matches("$.status == ''", {"status": None})
    assert matches("$.a.b != 'x'", {"a": {"b": None}})
    assert not matches("$.a.b == 'x'", {"a": {"b": None}})


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


# ---------------------------------------------------------------------------- no backtracking on hostile text


def test_a_run_of_backslashes_is_refused_not_hung() -> None:
    """``\\`` * 60 + ``==`` backtracked exponentially in the path regex (hung validate and start)."""
    with pytest.raises(ConditionError):
        compile_condition("\\" * 60 + "==")
    assert compile_condition("\\" * 60 + " == 'x'").kind == "compare"  # 30 escaped backslashes
    assert matches("$.a\\.b == 'x'", {"a.b": "x"})
    assert matches("$.a\\ b", {"a b": 1})
    assert compile_condition("$.a\\").kind == "truthy"  # a lone trailing backslash is a literal


def test_an_unterminated_cel_string_with_backslashes_is_refused_not_hung() -> None:
    """celpy's lexer backtracked exponentially on ``'\\\\\\…`` with no closing quote."""
    for text in ["a == '" + "\\" * 60, 'a == "' + "\\" * 60, 'a == """' + "\\" * 60, "b'" + "\\" * 60]:
        with pytest.raises(ConditionError, match="not a path, a comparison"):
            compile_condition(text)


def test_cel_string_literals_still_parse_as_celpy_parses_them() -> None:
    import celpy

    from dataflow_processor.admission.data_files import policy_document
    from dataflow_processor.cel_program import parse

    texts = [
        r"""'it\'s' + "a\"b" + '\\' + "\x41\101\u00e9" + r"raw\d" == x""",
        '"""multi\nline "quoted" ""inner"" """ + \'\'\'x\'y\'\'\' == x',
        r'b"\x00\xff" + b"" == x',
        r'"\q" == x',
    ]
    texts += [v["expression"] for v in policy_document()["spec"]["validations"]]
    env = celpy.Environment()
    for text in texts:
        assert parse(text) == env.compile(text), text


def test_duration_of_record_text_does_not_backtrack() -> None:
    """celpy's duration regex hung the processor on ``"a" * 40 + "!"`` from a record."""
    cond = compile_condition("duration(record.d) > duration('1m')")
    assert not cond.predicate({"d": "a" * 60 + "!"})
    assert cond.predicate({"d": "1h30m"})
    assert cond.predicate({"d": "61.5s"})
    assert not cond.predicate({"d": "-2h"})
    assert not cond.predicate({"d": "59s999ms"})
    assert compile_condition("duration('1.5h') == duration('90m')").predicate({})
    assert compile_condition("duration('1ms') + duration('1us') + duration('1ns') > duration('1ms')").predicate({})


# ---------------------------------------------------------------------------- compound conditions, metadata

RECORD = {"status": "active", "type": "order", "count": 5, "enabled": True, "empty": "", "zero": 0,
          "nested": {"ok": True}, "payload": {"op": "u"}}
META = {"topic": "dbserver1.public.orders", "partition": 3, "offset": 42}


@pytest.mark.parametrize(("text", "want"), [
    ("$.status && $.enabled", True),
    ("$.missing && $.enabled", False),
    ("$.status == 'active' && $.type == 'order'", True),
    ("$.status && $.type && $.count", True),
    ("$.status == 'active' || $.status == 'deleted'", True),
    ("$.status == 'deleted' || $.type == 'order'", True),
    ("$.status == 'x' || $.type == 'y'", False),
    ("$.missing || $.status == 'active' && $.enabled", True),  # && binds tighter than ||
    ("!$.empty", True),
    ("!$.enabled", False),
    ("!$.status == 'deleted'", True),  # ! applies to the whole comparison
    ("($.status == 'x' || $.type == 'order') && $.enabled", True),
    ("($.status == 'x' || $.type == 'y') && $.enabled", False),
    ("!($.status == 'deleted')", True),
    ('$.status == "a && b" || $.type == "x || y"', False),  # operators inside quotes are text
    ("$.status=='active'&&$.count==5", True),
    ("$.missing != 'x' || $.missing == ''", False),  # a missing field fails both, in compounds too
    ("!($.missing != 'x')", True),
])
def test_compound_conditions(text: str, want: bool) -> None:
    condition = compile_condition(text)
    assert condition.kind == "compound" and not condition.uses_metadata
    assert condition.predicate(RECORD) is want


@pytest.mark.parametrize(("text", "meta", "want"), [
    ("metadata.topic", META, True),
    ("metadata.missing", META, False),
    ("metadata.topic", {}, False),
    ("metadata.topic == 'dbserver1.public.orders'", META, True),
    ("metadata.topic == 'other'", META, False),
    ("metadata.partition == 3", META, True),
    ("metadata.partition != 3", META, False),
    ("metadata.topic == 'dbserver1.public.orders' && $.payload.op == 'u'", META, True),
    ("metadata.partition == 4 || !$.enabled", META, False),
])
def test_conditions_on_record_metadata(text: str, meta: dict, want: bool) -> None:
    condition = compile_condition(text)
    assert condition.uses_metadata and condition.record_predicate is not None
    assert condition.matches(RECORD, meta) is want


def test_a_payload_field_named_metadata_is_reached_with_dollar() -> None:
    record = {"metadata": {"topic": "from-payload"}}
    assert compile_condition("$.metadata.topic == 'from-payload'").matches(record, META)
    assert not compile_condition("metadata.topic == 'from-payload'").matches(record, META)


@pytest.mark.parametrize("text", [
    "status == 'paid' && amount > 100",  # bare names: CEL, as before
    "record.a == 'x' && record.b == 'y'",
    "a && b",
    "has(record.x) && record.x.y == 1",
    "$.amount > 100",  # not in the path grammar, and not CEL either: refused below
])
def test_texts_outside_the_path_grammar_stay_cel(text: str) -> None:
    if text.startswith("$"):
        with pytest.raises(ConditionError):
            compile_condition(text)
        return
    assert compile_condition(text).kind == "cel"


def test_cel_meaning_of_bare_names_is_unchanged() -> None:
    # CEL: a non-bool operand of && is an error, so no match; the path grammar would call "x" true.
    assert not compile_condition("a && b").predicate({"a": "x", "b": "y"})
    assert compile_condition("a && b").predicate({"a": True, "b": True})


def test_nesting_is_bounded() -> None:
    from dataflow_processor.condition_expr import MAX_NESTING

    ok = "(" * (MAX_NESTING - 1) + "$.status" + ")" * (MAX_NESTING - 1)
    assert compile_condition(ok).predicate(RECORD)
    with pytest.raises(ConditionError, match="nested more than"):
        compile_condition("(" * MAX_NESTING + "$.status" + ")" * MAX_NESTING, field="spec.x.condition")
    with pytest.raises(ConditionError, match=r"^spec\.x\.condition: .*nested"):
        compile_condition("!" * 200 + "$.status", field="spec.x.condition")


def test_the_longest_compound_condition_compiles_and_runs() -> None:
    text = " && ".join(["$.status"] * 340)  # 4,068 characters: the CRD's limit is 4,096
    condition = compile_condition(text)
    assert condition.kind == "compound" and condition.predicate(RECORD)


@pytest.mark.parametrize("text", ["$.a &&", "($.a", "$.a == ", "$.a || || $.b", "&& $.a", "$.a )"])
def test_broken_compound_conditions_are_refused(text: str) -> None:
    with pytest.raises(ConditionError):
        compile_condition(text)
