"""The transformation interface: a batch of records in, a batch out, failures reported per record.

A transformation is built once from its config (paths, conditions and formats compiled in
``__init__``) and then called with whole batches (``list[Record]``): the hot path is a plain loop
over a list with no per-record config work. It may change ``record.value`` in place, replace it,
drop records (filter) or emit several children per record (flatten: ``record.child(value)``, which
keeps the source position and ack token). A record whose transformation raises is handed to
``fail(record, error)`` and left out of the output; the chain sends it to the errors sink.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dataflow_processor.conditions import DEFAULT_TIMEOUT
from dataflow_processor.records import Record

FailFn = Callable[[Record, Exception], None]


@dataclass(frozen=True)
class BuildOptions:
    """What the chain gives a transformation beyond its config and position."""

    route_ids: Sequence[int] | None = None
    """Chain-wide ids of a router's routes, in route order."""
    condition_timeout: float = DEFAULT_TIMEOUT
    """Seconds per record per CEL condition."""


class Transform(ABC):
    """One configured transformation at position ``index`` of the chain."""

    type_name: str = ""
    # True when ``apply`` evaluates user CEL: its cost per record is bounded by a deadline, not by
    # the record's size, so the pipeline runs such a chain off the event loop.
    runs_cel: bool = False

    def __init__(self, index: int) -> None:
        self.index = index

    @classmethod
    def build(cls, config: Any, index: int, options: BuildOptions) -> Transform:
        """Make this transformation from its config; one that needs ``options`` overrides this."""
        return cls(config, index)  # type: ignore[call-arg]  # concrete transformations take (config, index)

    @property
    def field_path(self) -> str:
        """Where this transformation's settings are in the spec: ``spec.transformations[1].filter``."""
        return f"spec.transformations[{self.index}].{self.type_name}"

    @abstractmethod
    def apply(self, batch: list[Record], fail: FailFn) -> list[Record]:
        """Transform a batch; return the records that continue down the chain."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index={self.index})"
