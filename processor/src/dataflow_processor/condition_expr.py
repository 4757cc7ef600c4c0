"""Compound path conditions: ``&&``, ``||``, ``!`` and parentheses over paths and comparisons.

    $.event_id && $.user_id && $.timestamp
    ($.status == 'x' || $.type == 'order') && !$.test
    metadata.topic == 'orders' && metadata.partition == 3

Grammar (``!`` applies to a whole comparison: ``!$.a == 'x'`` is ``!($.a == 'x')``; ``&&`` binds
tighter than ``||``; both short-circuit)::

    or    := and ('||' and)*
    and   := unary ('&&' unary)*
    unary := '!' unary | '(' or ')' | atom
    atom  := path [('==' | '!=') literal]

Each atom means what it means alone (truthiness or a string-form comparison, see
:mod:`.conditions`): a missing field is false for truthiness, ``==`` and ``!=`` alike. A path is
``$.``-rooted (the record's value) or starts with ``metadata.`` (the record's metadata: ``topic``,
``partition``, ``offset``, ``key``… as the source sets them). A bare name (``status && paid``) is
not read by this grammar: such a text is CEL, whose variables are the record's fields, so nothing a
CEL user wrote changes meaning. ``$`` is not a CEL character, so the two never overlap.

Cost: the text is at most :data:`~.cel_cost.MAX_TEXT` characters, so at most about 2,000 atoms,
each one or two dict lookups per record; nesting (parentheses and ``!``) is at most
:data:`MAX_NESTING` deep, so the recursive parse and the evaluation closures stay far from
Python's recursion limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_NESTING = 32

# Tokens: operators, parentheses, quoted literals, and runs of anything else (paths, bare literals).
_TOKEN_RE = re.compile(
    r"""(?P<op>&&|\|\||==|!=|!|\(|\))"""
    r"""|'(?P<sq>(?:\\.|[^'\\])*)'|"(?P<dq>(?:\\.|[^"\\])*)\""""
    r"""|(?P<word>(?:\\.|[^\s'"()&|!=\\]|&(?!&)|\|(?!\|)|!(?!=)|=(?!=))+)"""
)
_SPACE_RE = re.compile(r"\s*")
_UNESCAPE_RE = re.compile(r"\\(.)")
METADATA_PREFIX = "metadata."


class ExprError(ValueError):
    """The text is not a compound path condition (it may still be valid CEL)."""


@dataclass(frozen=True)
class Atom:
    """``path`` alone (truthiness) or ``path op literal``; ``on_metadata``: path is in the metadata."""

    path: str
    on_metadata: bool
    op: str | None = None
    literal: str | None = None


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class AllOf:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    operands: tuple[Node, ...]


Node = Atom | Not | AllOf | AnyOf


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: kind ``op``, ``lit`` (a quoted literal, unescaped) or ``word``."""
    out: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while True:
        pos = _SPACE_RE.match(text, pos).end()  # type: ignore[union-attr]  # \s* always matches
        if pos == end:
            return out
        match = _TOKEN_RE.match(text, pos)
        if not match:
            raise ExprError(f"unexpected text at {pos}: {text[pos:pos + 20]!r}")
        pos = match.end()
        if match["op"] is not None:
            out.append(("op", match["op"]))
        elif match["sq"] is not None:
            out.append(("lit", _UNESCAPE_RE.sub(r"\1", match["sq"])))
        elif match["dq"] is not None:
            out.append(("lit", _UNESCAPE_RE.sub(r"\1", match["dq"])))
        else:
            out.append(("word", match["word"]))


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take_op(self, op: str) -> bool:
        token = self.peek()
        if token == ("op", op):
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.or_(0)
        if self.peek() is not None:
            raise ExprError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def or_(self, depth: int) -> Node:
        operands = [self.and_(depth)]
        while self.take_op("||"):
            operands.append(self.and_(depth))
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def and_(self, depth: int) -> Node:
        operands = [self.unary(depth)]
        while self.take_op("&&"):
            operands.append(self.unary(depth))
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def unary(self, depth: int) -> Node:
        if depth >= MAX_NESTING:
            raise ConditionTooDeep(f"parentheses and '!' are nested more than {MAX_NESTING} deep")
        if self.take_op("!"):
            return Not(self.unary(depth + 1))
        if self.take_op("("):
            node = self.or_(depth + 1)
            if not self.take_op(")"):
                raise ExprError("a '(' is not closed")
            return node
        return self.atom()

    def atom(self) -> Atom:
        token = self.peek()
        if token is None or token[0] != "word":
            raise ExprError(f"expected a path, found {token[1] if token else 'the end'!r}")
        self.i += 1
        word = token[1]
        if word.startswith("$"):
            path, on_metadata = word, False
        elif word.startswith(METADATA_PREFIX) and len(word) > len(METADATA_PREFIX):
            path, on_metadata = word[len(METADATA_PREFIX):], True
        else:
            raise ExprError(f"{word!r} is neither a $. path nor a metadata. path")
        for op in ("==", "!="):
            if self.take_op(op):
                literal = self.peek()
                if literal is None or literal[0] == "op":
                    raise ExprError(f"{op} needs a value")
                self.i += 1
                return Atom(path, on_metadata, op, literal[1])
        return Atom(path, on_metadata)


class ConditionTooDeep(ExprError):
    """Nested past :data:`MAX_NESTING`: refused outright, never handed to CEL."""


def parse(text: str) -> Node:
    """Parse a compound path condition; raise :class:`ExprError` when the text is not one."""
    return _Parser(_tokens(text)).parse()


def is_compound(node: Node) -> bool:
    return not isinstance(node, Atom)


def uses_metadata(node: Node) -> bool:
    if isinstance(node, Atom):
        return node.on_metadata
    if isinstance(node, Not):
        return uses_metadata(node.operand)
    return any(uses_metadata(n) for n in node.operands)


ValuePredicate = Callable[[Any], bool]
RecordPredicate = Callable[[Any, Mapping[str, Any]], bool]


def build(node: Node, atom: Callable[[Atom], ValuePredicate]) -> RecordPredicate:
    """A predicate over (value, metadata); ``atom`` compiles one atom over the object it reads."""
    if isinstance(node, Atom):
        p = atom(node)
        if node.on_metadata:
            return lambda value, metadata: p(metadata if isinstance(metadata, dict) else dict(metadata))
        return lambda value, metadata: p(value)
    if isinstance(node, Not):
        inner = build(node.operand, atom)
        return lambda value, metadata: not inner(value, metadata)
    parts = tuple(build(n, atom) for n in node.operands)
    # Plain loops, not all()/any() over a generator: this runs per record, and the generator costs more.
    if isinstance(node, AllOf):
        def all_of(value: Any, metadata: Mapping[str, Any]) -> bool:
            for part in parts:  # noqa: SIM110
                if not part(value, metadata):
                    return False
            return True

        return all_of

    def any_of(value: Any, metadata: Mapping[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110
            if part(value, metadata):
                return True
        return False

    return any_of


def build_value_only(node: Node, atom: Callable[[Atom], ValuePredicate]) -> ValuePredicate:
    """The same over the value alone, for a condition without metadata paths (the hot path)."""
    if isinstance(node, Atom):
        return atom(node)
    if isinstance(node, Not):
        inner = build_value_only(node.operand, atom)
        return lambda value: not inner(value)
    parts = tuple(build_value_only(n, atom) for n in node.operands)
    if isinstance(node, AllOf):  # plain loops, as in build()
        def all_of(value: Any) -> bool:
            for part in parts:  # noqa: SIM110
                if not part(value):
                    return False
            return True

        return all_of

    def any_of(value: Any) -> bool:
        for part in parts:  # noqa: SIM110
            if part(value):
                return True
        return False

    return any_of
