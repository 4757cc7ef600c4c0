"""One reason an object is rejected, with the field path it names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    layer: str  # "schema" or "policy"
    message: str  # human text that starts with the field path, e.g. "spec.sink.type: Required value"

    def __str__(self) -> str:
        return self.message
