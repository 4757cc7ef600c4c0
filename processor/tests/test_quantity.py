"""Kubernetes quantities as the offline admission policy compares them (requests ≤ limits)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from dataflow_processor.admission.quantity import compare_to, is_quantity, parse, quantity


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1), ("1500m", Fraction(3, 2)), ("2Gi", 2 * 1024**3), ("1e3", 1000), (".5", Fraction(1, 2)),
    ("100n", Fraction(1, 10**7)), ("1E-2", Fraction(1, 100)), ("-1", -1), ("1Mi", 1024**2), ("128974848", 128974848),
])
def test_parses_the_quantity_grammar(text: str, value: Fraction) -> None:
    assert parse(text) == value


@pytest.mark.parametrize("text", ["", "x", "1ee", "1Mib", "1 Gi", "1e999", "1" * 65, "Gi"])
def test_refuses_what_is_not_a_quantity(text: str) -> None:
    assert parse(text) is None and not is_quantity(text)
    if text:
        with pytest.raises(ValueError):
            quantity(text)


def test_compares_across_units() -> None:
    assert compare_to(quantity("1Gi"), quantity("1000Mi")) == 1
    assert compare_to(quantity("1500m"), quantity("2")) == -1
    assert compare_to(quantity("1k"), quantity("1e3")) == 0
