"""User CEL compiled and run by cel-python, with every cost bounded.

What celpy does not bound, and what this module does about it:

* **Parsing backtracks exponentially.** celpy's lexer matches string literals with
  ``(?:\\\\x|…|.)*?"``: a backslash can be an escape or a plain char, so an unterminated literal
  with a run of backslashes (``a == '\\\\\\\\…``) never finishes lexing. :func:`parse` uses celpy's
  grammar with the string terminals rewritten so that every char has one way to match (an escape
  pair is always an escape). They accept the same literals, except that a literal whose closing
  quote is escaped (``"abc\\"``) is unterminated, as in the CEL spec, rather than read as ending
  on that quote.
* **Evaluation has no cost limit.** Before a program runs, :func:`.cel_cost.check_cost` refuses
  expressions over the static bounds; while it runs, :class:`DeadlineRunner` checks the clock at
  every node it visits (comprehension bodies included) and aborts with :class:`DeadlineExceeded`
  once the record's deadline has passed.
* **``duration(text)`` backtracks on record text.** celpy validates the text with
  ``([0-9]*(\\.[0-9]*)?[a-z]+)+$``; ``"a" * 40 + "!"`` in a record field hangs the processor
  inside the regex engine, where no deadline can reach it. :func:`duration` parses the same format
  with one way to match each char. (``matches()`` is safe: celpy runs it on RE2.)
"""

from __future__ import annotations

import datetime
import math
import re
import threading
import time
from collections.abc import Callable
from math import fsum
from pathlib import Path
from typing import Any, cast

import celpy
import celpy.celtypes
import lark
from celpy.celparser import CELParseError, CELParser
from celpy.evaluation import Activation, Evaluator

from dataflow_processor.cel_cost import check_cost, check_text

# celpy's string terminals, each char matched one way only (see the module docstring). Escape
# chars are those of celpy's grammar; a backslash before any other char is a plain char, as there.
_ESC = r"""[abfnrtv"'\\]"""
_STRING_TERMINALS = (
    f'STRING_LIT     : /[rR]?"(?:\\\\{_ESC}|\\\\(?!{_ESC})|[^"\\\\\\n])*"/\n'
    f"               | /[rR]?'(?:\\\\{_ESC}|\\\\(?!{_ESC})|[^'\\\\\\n])*'/\n"
    "\n"
    f'MLSTRING_LIT   : /[rR]?"""(?:\\\\{_ESC}|\\\\(?!{_ESC})|[^"\\\\]|"(?!""))*"""/\n'
    f"               | /[rR]?'''(?:\\\\{_ESC}|\\\\(?!{_ESC})|[^'\\\\]|'(?!''))*'''/\n"
)
_parser: lark.Lark | None = None
_parser_lock = threading.Lock()


class DeadlineExceeded(BaseException):
    """The record's evaluation ran past its deadline.

    A ``BaseException`` on purpose: celpy turns ``Exception``\\ s raised while evaluating into CEL
    error values, which ``exists``/``all``/``||`` then skip, and the evaluation would go on.
    """


def _grammar() -> str:
    text = (Path(celpy.__file__).parent / "cel.lark").read_text()
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    replaced = 0
    skipping = False
    for line in lines:
        if line.startswith(("STRING_LIT ", "MLSTRING_LIT ")):
            skipping = True
            replaced += 1
            continue
        if skipping and line.lstrip().startswith("|"):
            continue
        skipping = False
        out.append(line)
    if replaced != 2:  # a celpy whose grammar changed: refuse rather than keep the slow lexer
        raise RuntimeError("celpy's grammar has no STRING_LIT/MLSTRING_LIT to replace")
    return "".join(out) + "\n" + _STRING_TERMINALS


def _lark() -> lark.Lark:
    global _parser
    with _parser_lock:
        if _parser is None:
            # The options of celpy's own parser (celpy.celparser.CELParser), with our grammar.
            _parser = lark.Lark(
                _grammar(),
                parser="lalr",
                start="expr",
                g_regex_flags=re.M,
                lexer_callbacks={"IDENT": CELParser.ambiguous_literals},
                propagate_positions=True,
                maybe_placeholders=False,
                priority="invert",
            )
        return _parser


def parse(text: str) -> lark.Tree[lark.Token]:
    """Parse CEL text into celpy's syntax tree; raise ``CELParseError`` with the position."""
    try:
        return _lark().parse(text)
    except (lark.exceptions.UnexpectedToken, lark.exceptions.UnexpectedCharacters) as exc:
        raise CELParseError(exc.get_context(text), *exc.args, line=exc.line, column=exc.column) from exc
    except lark.exceptions.LarkError as exc:
        raise CELParseError(str(exc)) from exc


_DURATION = re.compile(r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d)")


def duration(value: Any) -> celpy.celtypes.DurationType:
    """CEL ``duration()``: celpy's, with the text parsed in linear time (``"1h30m"``, ``"-1.5s"``)."""
    if not isinstance(value, str):
        return celpy.celtypes.DurationType(value)
    if not _DURATION.fullmatch(value):
        raise ValueError(f"invalid duration {value[:64]!r}")
    sign = -1.0 if value.startswith("-") else 1.0
    scale = celpy.celtypes.DurationType.scale
    seconds = sign * fsum(float(number) * scale[unit] for number, unit in _DURATION_PART.findall(value))
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value[:64]!r}")
    return celpy.celtypes.DurationType(datetime.timedelta(seconds=seconds))


FUNCTIONS: dict[str, Callable[..., Any]] = {"duration": duration}


class _DeadlineEvaluator(Evaluator):
    """celpy's interpreter, checking its runner's deadline at every node it visits."""

    def __init__(self, ast: lark.Tree[lark.Token], activation: Activation, runner: DeadlineRunner) -> None:
        super().__init__(ast, activation)
        self._runner = runner

    def sub_evaluator(self, ast: lark.Tree[lark.Token]) -> Evaluator:
        return _DeadlineEvaluator(ast, self.activation, self._runner)  # macro bodies too

    def _visit_tree(self, tree: lark.Tree[lark.Token]) -> Any:
        if time.monotonic() > self._runner.deadline:
            raise DeadlineExceeded
        # lark's Interpreter._visit_tree, inlined: a ``super()`` call would add a stack frame per
        # tree level, and celpy's recursion is what bounds the depth of an expression.
        method = getattr(self, tree.data)
        wrapper = getattr(method, "visit_wrapper", None)
        if wrapper is not None:
            return method.visit_wrapper(method, tree.data, tree.children, tree.meta)
        return method(tree)


class DeadlineRunner(celpy.InterpretedRunner):
    """A compiled program; set ``deadline`` (a ``time.monotonic()`` value) before ``evaluate``."""

    deadline: float = math.inf

    def evaluate(self, context: Any) -> Any:
        evaluator = _DeadlineEvaluator(self.ast, self.new_activation(), self)
        return evaluator.evaluate(context)


def compile_program(text: str) -> DeadlineRunner:
    """Parse, check the static bounds, and build a program; raise ``CELParseError`` or ``CostError``."""
    check_text(text)  # before parsing: the parser's time grows with the text
    tree = parse(text)
    check_cost(tree)
    environment = celpy.Environment(runner_class=DeadlineRunner)
    return cast(DeadlineRunner, environment.program(tree, functions=FUNCTIONS))
