"""Kubernetes resource quantities for the offline policy: CEL's `isQuantity`, `quantity`, `compareTo`.

The API server's CEL has the Kubernetes quantity library; cel-python does not, so the policy's
`requests ≤ limits` rule would not evaluate offline without these. Parsing follows the quantity
grammar of core/v1 (`123`, `1.5`, `100m`, `2Ki`, `1e3`); values are exact fractions.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from celpy import celtypes

_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
# One linear pattern (no nested repetition): the input is tenant text.
_QUANTITY = re.compile(rf"({_NUMBER})(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_LENGTH = 64


class Quantity:
    """A parsed quantity; only compared, never printed back."""

    def __init__(self, value: Fraction) -> None:
        self.value = value


def parse(text: str) -> Fraction | None:
    if len(text) > _MAX_LENGTH:
        return None
    match = _QUANTITY.fullmatch(text)
    if not match:
        return None
    number, suffix = Fraction(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        return number * Fraction(1 << _BINARY[suffix])
    exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
    if abs(exponent) > 64:
        return None
    return number * Fraction(10**exponent) if exponent >= 0 else number / Fraction(10**-exponent)


def is_quantity(text: Any) -> celtypes.BoolType:
    return celtypes.BoolType(parse(str(text)) is not None)


def quantity(text: Any) -> Quantity:
    value = parse(str(text))
    if value is None:
        raise ValueError(f"not a quantity: {str(text)[:_MAX_LENGTH]!r}")
    return Quantity(value)


def compare_to(a: Quantity, b: Quantity) -> celtypes.IntType:
    return celtypes.IntType((a.value > b.value) - (a.value < b.value))


# Typed loosely: celpy's signature does not know the Quantity these pass between them.
FUNCTIONS: dict[str, Any] = {"isQuantity": is_quantity, "quantity": quantity, "compareTo": compare_to}
