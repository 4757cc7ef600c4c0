"""Filter and router conditions, compiled once into plain Python predicates over ``record.value``.

Accepted forms, tried in this order:

1. **Truthiness** — a bare path, ``$.active`` / ``active`` / ``user.flags.0``: true iff the value
   exists and is not ``false``, ``null``, ``0``, ``""`` or the string ``"false"``; objects and
   arrays (even empty) are true. Same rule for filter and router.
2. **Comparison** — ``path == 'v'``, ``path != "v"`` or an unquoted literal (``$.code == 200``,
   ``$.paid == true``). The value's *string form* is compared: a number prints as its JSON text,
   ``true``/``false`` as such, ``null`` as ``""``, an object or array as its JSON. So
   ``$.code == '200'`` matches the number 200. A field the record does not have fails the
   comparison, for ``==`` and ``!=`` alike: ``$.status != 'deleted'`` does not keep ``{}``, and
   ``$.level == ''`` does not route a record without ``level`` (a present ``null`` still prints as
   ``""``).
3. **Compound** — ``&&``, ``||``, ``!`` and parentheses over ``$.`` paths, ``metadata.`` paths and
   comparisons of them: ``$.event_id && $.user_id``, ``metadata.partition == 3 && !$.test``
   (:mod:`.condition_expr`). A path starting ``metadata.`` reads the record's metadata (``topic``,
   ``partition``, ``offset``, ``key``…) in forms 1 and 2 as well; write ``$.metadata.x`` for a
   payload field named ``metadata``.
4. **CEL** (cel-python) for anything richer: ``amount > 100 && status in ['paid', 'sent']``.
   The record's top-level fields are CEL variables, and ``record`` is the whole record (unless it
   has a field of that name). An evaluation error — typically a field missing from this record —
   makes the condition *false* (the record does not match), consistent with form 1 where a missing
   field is false; use ``has(record.x)`` to be explicit. A CEL expression that does not parse, or
   is over the static cost bounds (:mod:`.cel_cost`), is a spec error at start-up naming its field.
   Each evaluation runs under a deadline (``timeout`` seconds per record, from the processor's
   ``--condition-timeout-ms``); a record that takes longer raises :class:`ConditionTimeout`, and
   its transformation sends it to the errors sink.

Forms 1 to 3 never touch CEL and cost one or two dict lookups per path per record.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from dataflow_processor import condition_expr
from dataflow_processor.cel_cost import CostError, check_text
from dataflow_processor.condition_expr import Atom, RecordPredicate
from dataflow_processor.paths import MISSING, compile_path

Predicate = Callable[[Any], bool]

DEFAULT_TIMEOUT = 1.0  # seconds one CEL evaluation may take on one record

# A path is a run of escape pairs (backslash + any char) and plain chars; a plain char is never a
# backslash, so each backslash can only start a pair. (When it could also be a plain char, a run of
# backslashes could be split in exponentially many ways and `\\` * 60 + `==` never finished.) A
# lone trailing backslash is kept as a literal, as ``split_path`` does; the lookahead makes the
# path non-empty without a second way to match its first char.
_PATH = r"(?=[^\s=!<>'\"()&|+,\[\]{}])(?:\\.|[^\\\s=!<>'\"()&|+,\[\]{}])*\\?"
_TRUTHY_RE = re.compile(rf"^\s*(?P<path>\$?\.?{_PATH})\s*$")
_COMPARE_RE = re.compile(
    rf"""^\s*(?P<path>\$?\.?{_PATH})\s*(?P<op>==|!=)\s*
        (?:'(?P<sq>(?:\\.|[^'\\])*)'|"(?P<dq>(?:\\.|[^"\\])*)"|(?P<bare>[^\s'"]+))\s*$""",
    re.VERBOSE,
)
_UNESCAPE_RE = re.compile(r"\\(.)")


class ConditionError(ValueError):
    """A condition that is neither a path, a comparison, nor valid CEL within the cost bounds.

    The message starts with the condition's field (``spec.transformations[0].filter.condition: …``).
    """


class ConditionTimeout(Exception):
    """One record's evaluation of a CEL condition ran past its deadline."""


def string_form(value: Any) -> str:
    """gjson's ``Result.String()``: what the original compared conditions against."""
    if isinstance(value, str):
        return value
    if value is MISSING or value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return orjson.dumps(value).decode()


def is_truthy(value: Any) -> bool:
    """The original's truthiness (filter and router form 1)."""
    if value is MISSING or value is None or value is False:
        return False
    if isinstance(value, str):
        return value not in ("", "false")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    return True


@dataclass(frozen=True)
class Condition:
    """A compiled condition: ``kind`` is ``truthy``, ``compare``, ``compound`` or ``cel``.

    ``predicate(value)`` reads the record's value only. A condition with ``metadata.`` paths has
    ``uses_metadata`` set: call ``record_predicate(value, metadata)`` for it (its ``predicate`` sees
    empty metadata). The flag lets the others skip building a record's metadata at all.
    """

    text: str
    kind: str
    predicate: Predicate
    uses_metadata: bool = False
    record_predicate: RecordPredicate | None = None

    def matches(self, value: Any, metadata: Any) -> bool:
        if self.record_predicate is not None:
            return self.record_predicate(value, metadata)
        return self.predicate(value)


def _truthy_predicate(path_text: str) -> Predicate:
    path = compile_path(path_text)
    get = path.get
    if path.simple and len(path.segments) == 1 and not path.last.isdigit():
        key = path.last

        def truthy_key(value: Any) -> bool:
            v = value.get(key, MISSING)
            if v is MISSING or v is None or v is False:
                return False
            if v is True:
                return True
            return is_truthy(v)

        return truthy_key
    return lambda value: is_truthy(get(value))


def _compare_predicate(path_text: str, op: str, literal: str) -> Predicate:
    path = compile_path(path_text)
    get = path.get
    equal = op == "=="
    if path.simple and len(path.segments) == 1 and not path.last.isdigit():
        key = path.last

        def compare_key(value: Any) -> bool:
            v = value.get(key, MISSING)
            if v.__class__ is not str:
                if v is MISSING:
                    return False
                v = string_form(v)
            return (v == literal) is equal

        return compare_key

    def compare_path(value: Any) -> bool:
        v = get(value)
        return v is not MISSING and (string_form(v) == literal) is equal

    return compare_path


def _cel_predicate(text: str, field: str, timeout: float) -> Predicate:
    from celpy.adapter import json_to_cel
    from celpy.celtypes import BoolType

    from dataflow_processor.cel_program import DeadlineExceeded, compile_program

    try:
        program = compile_program(text)
    except CostError as exc:
        raise ConditionError(f"{field}: {exc}") from exc
    except Exception as exc:  # celpy raises its own parse error types
        shown = text if len(text) <= 200 else text[:200] + "…"
        raise ConditionError(
            f"{field}: {shown!r} is not a path, a comparison (path == 'value') or valid CEL: {exc}"
        ) from exc
    monotonic = time.monotonic

    def cel(value: Any) -> bool:
        converted: Any = json_to_cel(value)
        activation = dict(converted)
        activation.setdefault("record", converted)
        program.deadline = monotonic() + timeout
        try:
            result = program.evaluate(activation)
        except DeadlineExceeded:
            raise ConditionTimeout(
                f"{field}: evaluating the condition on this record took longer than {timeout:g}s "
                "(the per-record limit, --condition-timeout-ms)"
            ) from None
        except RecursionError:
            raise  # the depth bound should prevent it; if not, the record fails loudly, not as "no match"
        except Exception:
            return False
        return isinstance(result, BoolType) and bool(result)

    return cel


def compile_condition(text: str, *, field: str = "condition", timeout: float = DEFAULT_TIMEOUT) -> Condition:
    """Compile a condition text into a :class:`Condition`; raise :class:`ConditionError` if invalid.

    ``field`` names the condition in messages (``spec.transformations[1].filter.condition``);
    ``timeout`` is the seconds one CEL evaluation may take per record.
    """
    if not text or not text.strip():
        raise ConditionError(f"{field}: condition is empty")
    try:
        check_text(text)
    except CostError as exc:
        raise ConditionError(f"{field}: {exc}") from exc
    stripped = text.strip()
    if not stripped.startswith(condition_expr.METADATA_PREFIX):
        match = _TRUTHY_RE.match(text)
        if match:
            return Condition(text, "truthy", _truthy_predicate(match["path"]))
        match = _COMPARE_RE.match(text)
    else:
        match = None
    if match:
        if match["sq"] is not None:
            literal = _UNESCAPE_RE.sub(r"\1", match["sq"])
        elif match["dq"] is not None:
            literal = _UNESCAPE_RE.sub(r"\1", match["dq"])
        else:
            literal = match["bare"]
        return Condition(text, "compare", _compare_predicate(match["path"], match["op"], literal))
    compound = _compound(text, field)
    if compound is not None:
        return compound
    return Condition(text, "cel", _cel_predicate(text, field, timeout))


def _atom_predicate(atom: Atom) -> Predicate:
    if atom.op is None:
        return _truthy_predicate(atom.path)
    assert atom.literal is not None
    return _compare_predicate(atom.path, atom.op, atom.literal)


def _compound(text: str, field: str) -> Condition | None:
    """Form 3 (and forms 1 and 2 on metadata), or None when the text is not one (then it is CEL)."""
    try:
        node = condition_expr.parse(text)
    except condition_expr.ConditionTooDeep as exc:
        raise ConditionError(f"{field}: {exc}") from exc
    except condition_expr.ExprError:
        return None
    kind = "compound" if condition_expr.is_compound(node) else ("truthy" if node.op is None else "compare")  # type: ignore[union-attr]
    try:
        if not condition_expr.uses_metadata(node):
            return Condition(text, kind, condition_expr.build_value_only(node, _atom_predicate))
        record_predicate = condition_expr.build(node, _atom_predicate)
    except ValueError as exc:  # a path compile_path refuses (an empty segment)
        raise ConditionError(f"{field}: {exc}") from exc
    return Condition(text, kind, lambda value: record_predicate(value, {}), True, record_predicate)
