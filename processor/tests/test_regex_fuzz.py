"""Every regular expression that sees spec or record text, fed adversarial input: none may backtrack.

A backtracking regex is a hang that admission cannot catch: ``\\`` * 60 + ``==`` as a condition
hung ``validate``, ``preview`` and the processor's start (the condition path regex), and so did an
unterminated CEL string literal with a run of backslashes (celpy's lexer); ``"a" * 40 + "!"`` in a
record field hung the processor in celpy's ``duration()``. Python's ``re`` cannot be interrupted,
so no deadline helps: each regex must take time linear (or at worst quadratic) in its input.

The regexes are found, not listed: every compiled pattern at module level in the processor, every
pattern literal passed to a ``re`` function in the processor, scripts and the role's plugins (a
pattern built at run time fails the test until it is added here), the CRD's ``pattern``\\ s (the
offline validator runs them with ``re``), and each terminal of the CEL lexer. Each is run on long
runs of every special char, alternations of two chars and nested repeats. The bound is generous
(one second per call, where a linear regex takes microseconds) so the test catches exponential
blow-up without being sensitive to a slow machine.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import itertools
import pkgutil
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dataflow_processor
from dataflow_processor import cel_program
from dataflow_processor.admission.data_files import crd_document
from dataflow_processor.conditions import ConditionError, compile_condition

REPO = Path(__file__).resolve().parents[2]
SOURCES = [
    REPO / "processor/src/dataflow_processor",
    REPO / "scripts",
    *(REPO / "roles").glob("*/library"),
    *(REPO / "roles").glob("*/module_utils"),
    *(REPO / "roles").glob("*/*_plugins"),
    *(REPO / "roles").glob("*/files"),
]
# Patterns built at run time, each fuzzed by a test of its own below.
RUNTIME_BUILT = {"processor/src/dataflow_processor/redaction.py"}
RE_FUNCTIONS = {"compile", "match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer"}
LIMIT = 1.0  # seconds per call; linear regexes take microseconds on these inputs
LONG = 1000  # quadratic searches (a digit run may start anywhere) stay far below the bound
# For the whole condition compiler, which also runs lark's LALR parser in Python (~50 µs a char):
# exponential backtracking shows within tens of chars, and a shorter input keeps a loaded machine
# far from the bound.
SHORT = 300

SPECIALS = "\\.$=!<>'\"()[]{}*+?#|&,:;-_/ \t\nµ0aZ"


def adversarial(long: int) -> Iterator[str]:
    """Long runs of each char, runs that end in a mismatch, two-char alternations, nested repeats."""
    for ch in SPECIALS:
        yield ch * long
        yield ch * long + "!"
        yield ch * 60 + "=="
        yield "$." + ch * long + " == '"
        yield "a == '" + ch * long
    for a, b in itertools.product("\\.$='\"(*?#0a ", repeat=2):
        yield (a + b) * (long // 2)
        yield (a + b) * (long // 2) + "\x00"
    for unit in ("1.", "1h", "ms", "a1", "-1", "1e", "'\\'", '"\\"', "\\\\'", "$.a", "a.b", "[0]", "#.", "*a"):
        yield unit * (long // len(unit)) + "!"
    yield "(" * 200 + "a" + ")" * 199
    yield "[" * 300
    yield "a" * 40 + "!"


INPUTS = list(dict.fromkeys(adversarial(LONG)))
SHORT_INPUTS = list(dict.fromkeys(adversarial(SHORT)))


def timed(call: Callable[[str], Any], text: str) -> float:
    started = time.perf_counter()
    with contextlib.suppress(ValueError, ConditionError, re.error):
        call(text)
    return time.perf_counter() - started


def assert_bounded(name: str, call: Callable[[str], Any], inputs: list[str] = INPUTS) -> None:
    slow = [(round(t, 2), text[:40]) for text in inputs if (t := timed(call, text)) > LIMIT]
    assert not slow, f"{name} backtracks: {slow[:3]}"


# ---------------------------------------------------------------------------- finding the regexes


def processor_patterns() -> dict[str, re.Pattern[str]]:
    """Compiled patterns at module level of every processor module."""
    found: dict[str, re.Pattern[str]] = {}
    for info in pkgutil.walk_packages(dataflow_processor.__path__, "dataflow_processor."):
        module = importlib.import_module(info.name)
        for attr, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found[f"{info.name}.{attr}"] = value
    return found


def literal_patterns() -> tuple[dict[str, str], list[str]]:
    """Pattern literals passed to ``re.*`` in the sources; and the calls whose pattern is not a literal."""
    literals: dict[str, str] = {}
    unknown: list[str] = []
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else []:
            tree = ast.parse(path.read_text(), str(path))
            module_level = {id(node.value) for node in tree.body if isinstance(node, ast.Assign)}
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "re"
                    and node.func.attr in RE_FUNCTIONS
                    and node.args
                ):
                    continue
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                pattern = node.args[0]
                if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str):
                    literals[where] = pattern.value
                elif not (node.func.attr == "compile" and id(node) in module_level) and \
                        str(path.relative_to(REPO)) not in RUNTIME_BUILT:
                    unknown.append(where)  # a module-level compile is checked as a processor pattern
    return literals, unknown


def crd_patterns() -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found[path] = node["pattern"]
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(crd_document(), "crd")
    return found


def lexer_terminals() -> dict[str, str]:
    return {t.name: t.pattern.to_regexp() for t in cel_program._lark().terminals}


# ---------------------------------------------------------------------------- the tests


def test_the_search_finds_the_known_regexes() -> None:
    """Guards the discovery itself: if these go missing, the fuzz tests below test nothing."""
    assert "dataflow_processor.conditions._COMPARE_RE" in processor_patterns()
    assert "dataflow_processor.cel_program._DURATION" in processor_patterns()
    literals, _ = literal_patterns()
    assert any(where.startswith("processor/src/dataflow_processor/connectors/trino/") for where in literals)
    assert {"STRING_LIT", "MLSTRING_LIT", "FLOAT_LIT"} <= set(lexer_terminals())


def test_the_secret_mask_is_bounded() -> None:
    # redaction.py joins the escaped secret values into one alternation: no nested repeat, so no
    # backtracking blow-up, whatever the secrets and the logged text hold.
    from dataflow_processor import redaction

    try:
        redaction.register_secrets(["a" * 40, "\\" * 30 + "(", ".*" * 20, "aab" * 10, "x"])
        assert_bounded("redaction mask", redaction.mask)
    finally:
        redaction.forget_secrets()


def test_every_regex_call_has_a_pattern_this_test_can_see() -> None:
    _, unknown = literal_patterns()
    assert not unknown, f"regexes built at run time; fuzz them here: {unknown}"


@pytest.mark.parametrize("name", sorted(processor_patterns()))
def test_processor_pattern(name: str) -> None:
    pattern = processor_patterns()[name]
    assert_bounded(name, pattern.search)
    assert_bounded(name, pattern.fullmatch)


@pytest.mark.parametrize("where", sorted(literal_patterns()[0]))
def test_literal_pattern(where: str) -> None:
    pattern = re.compile(literal_patterns()[0][where])
    assert_bounded(where, pattern.search)
    assert_bounded(where, pattern.fullmatch)


@pytest.mark.parametrize("path", sorted(crd_patterns()))
def test_crd_pattern(path: str) -> None:
    pattern = re.compile(crd_patterns()[path])
    assert_bounded(path, pattern.search)  # jsonschema's ``pattern`` is re.search


@pytest.mark.parametrize("name", sorted(lexer_terminals()))
def test_cel_lexer_terminal(name: str) -> None:
    pattern = re.compile(lexer_terminals()[name], re.M)
    assert_bounded(name, pattern.match)  # the lexer matches at each position


def test_compile_condition() -> None:
    """The whole condition compiler: path and comparison regexes, CEL lexer and parser, cost check."""
    assert_bounded("compile_condition", compile_condition, SHORT_INPUTS)


def test_cel_functions_that_parse_record_text() -> None:
    assert_bounded("duration()", cel_program.duration)
    timestamp = compile_condition("timestamp(record.t) > timestamp('2020-01-01T00:00:00Z')").predicate
    assert_bounded("timestamp()", lambda text: timestamp({"t": text}), SHORT_INPUTS)
    matches = compile_condition("record.t.matches('^(a+)+$')").predicate  # RE2 in celpy
    assert_bounded("matches()", lambda text: matches({"t": text}), SHORT_INPUTS)


def test_glob_paths_match_record_keys_in_linear_time() -> None:
    """``*`` and ``?`` in a path segment match record keys through ``fnmatch`` (a regex)."""
    from dataflow_processor.paths import compile_path

    globs = ["*a*a*a*a*a*a*a*a*a*a*b", "?*" * 40 + "x", "*" * 200 + "b", "a*" * 100 + "!"]
    for glob in globs:
        get = compile_path(glob).get
        assert_bounded(f"path {glob[:20]}", lambda key, get=get: get({key: 1}))
