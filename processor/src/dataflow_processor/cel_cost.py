"""Static cost bounds for user CEL, checked on the parsed expression before it ever runs.

A condition is refused (at ``validate``, ``preview`` and processor start, naming its field) when:

* its text is longer than :data:`MAX_TEXT` characters (the CRD's ``maxLength``; checked here too
  because ``preview`` and an edited ConfigMap never went through admission);
* its syntax tree has more than :data:`MAX_NODES` nodes or is deeper than :data:`MAX_DEPTH` levels
  (celpy evaluates recursively, about five stack frames per level, and Python stops at 1000: a
  deeper tree ended in ``RecursionError``, which read as "no match"). That allows about 150
  operators chained with ``||``/``&&``, or 15 levels of parentheses;
* a list or map literal has more than :data:`MAX_LITERAL_ENTRIES` entries (celpy rebuilds literals
  on every evaluation, so each entry costs every record);
* comprehensions (``all``, ``exists``, ``exists_one``, ``map``, ``filter``, ``reduce``) are nested
  more than :data:`MAX_COMPREHENSION_NESTING` deep;
* its estimated cost exceeds :data:`MAX_COST` steps: every node counts once, times the number of
  entries of each enclosing comprehension's range when that range is a literal (or a ``map`` /
  ``filter`` of one). A range read from the record counts once: its size is unknown until run
  time, where the per-record deadline bounds it (see :mod:`.cel_program`).

One step is roughly one node visit of celpy's interpreter, 3-10 µs, so :data:`MAX_COST` is about
a second of evaluation at worst. The walk is iterative: a hostile tree cannot overflow the stack
of the check that is meant to refuse it.
"""

from __future__ import annotations

from lark import Token, Tree

MAX_TEXT = 4096
MAX_NODES = 20_000
MAX_DEPTH = 160  # celpy needs about 5 stack frames per level; Python allows 1000
MAX_LITERAL_ENTRIES = 500
MAX_COMPREHENSION_NESTING = 3
MAX_COST = 100_000

# Macros whose last argument is evaluated once per element of the range (celpy's set; ``min`` is a
# plain reduction over the list and costs no evaluation per element).
COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter", "reduce"})


class CostError(ValueError):
    """A CEL expression over one of the static bounds; the message says which."""


def check_text(text: str) -> None:
    if len(text) > MAX_TEXT:
        raise CostError(f"a condition is at most {MAX_TEXT} characters long, this one has {len(text)}")


def check_cost(tree: Tree[Token]) -> int:
    """Raise :class:`CostError` if ``tree`` is over a bound; return its estimated cost in steps."""
    cost = 0
    nodes = 0
    # (node, steps per visit of this node, comprehension nesting, tree depth)
    stack: list[tuple[Tree[Token], int, int, int]] = [(tree, 1, 0, 1)]
    while stack:
        node, weight, nesting, depth = stack.pop()
        nodes += 1
        cost += weight
        if nodes > MAX_NODES:
            raise CostError(f"the expression is too large: more than {MAX_NODES} syntax nodes")
        if depth > MAX_DEPTH:
            raise CostError(f"the expression is nested too deeply: more than {MAX_DEPTH} levels")
        if cost > MAX_COST:
            raise CostError(
                f"the expression may cost more than {MAX_COST} evaluation steps per record "
                "(comprehensions over literals multiply: each iterates every entry)"
            )
        entries = _literal_entries(node)
        if entries is not None and entries > MAX_LITERAL_ENTRIES:
            raise CostError(f"a {node.data} literal has {entries} entries, at most {MAX_LITERAL_ENTRIES} are allowed")
        children = [child for child in node.children if isinstance(child, Tree)]
        if _comprehension(node) is not None:
            if nesting + 1 > MAX_COMPREHENSION_NESTING:
                raise CostError(f"comprehensions are nested more than {MAX_COMPREHENSION_NESTING} deep")
            target, args = children[0], children[1]
            size = max(1, _range_size(target))
            arguments = [a for a in args.children if isinstance(a, Tree)]
            # ``reduce(acc, x, init, body)`` evaluates ``init`` once; every other macro's last
            # argument is its body, and its variables are single identifiers.
            stack.append((target, weight, nesting, depth + 1))
            stack.append((args, weight, nesting, depth + 1))
            for argument in arguments[:-1]:
                stack.append((argument, weight, nesting, depth + 2))
            if arguments:
                stack.append((arguments[-1], weight * size, nesting + 1, depth + 2))
            continue
        for child in children:
            stack.append((child, weight, nesting, depth + 1))
    return cost


def _comprehension(node: Tree[Token]) -> str | None:
    """The macro name if ``node`` is ``range.macro(args)`` with a comprehension macro."""
    if node.data != "member_dot_arg" or len(node.children) != 3:
        return None
    name = node.children[1]
    if isinstance(name, Token) and name.value in COMPREHENSIONS and isinstance(node.children[2], Tree):
        return str(name)
    return None


def _literal_entries(node: Tree[Token]) -> int | None:
    if node.data == "list_lit":
        return sum(len(c.children) for c in node.children if isinstance(c, Tree))
    if node.data == "map_lit":
        return sum(len(c.children) // 2 for c in node.children if isinstance(c, Tree))
    return None


def _range_size(node: Tree[Token]) -> int:
    """Entries a comprehension over ``node`` iterates, when the expression shows it; else 1."""
    for _ in range(MAX_DEPTH):
        entries = _literal_entries(node)
        if entries is not None:
            return entries
        if _comprehension(node) in ("map", "filter"):  # at most as many results as inputs
            target = node.children[0]
            if not isinstance(target, Tree):
                return 1
            node = target
            continue
        children = [c for c in node.children if isinstance(c, Tree)]
        if len(children) != 1 or any(isinstance(c, Token) for c in node.children):
            return 1  # an operator, a call, a field of the record: unknown here
        node = children[0]
    return 1
