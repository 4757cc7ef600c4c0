"""The transformation chain: parse stage, then every transformation in spec order, over one batch.

``run(batch)`` returns the records that reached the end of the chain and the per-record failures
(:class:`Failure`: parse or transform stage, with the transformation index and type). The parse
stage decodes ``record.raw`` (bytes from a connector) into ``record.value`` with orjson; a payload
that is not valid JSON, or is JSON but not an object, fails at stage ``parse``.

``runs_cel`` says whether any transformation evaluates user CEL (filter or router conditions that
are neither a path nor a comparison); the pipeline then runs the chain in a worker thread.

Route ids: each router route gets a chain-wide id (0, 1, … in spec order over all routers), which
the pipeline maps to that route's sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from dataflow_processor.conditions import DEFAULT_TIMEOUT, ConditionError
from dataflow_processor.records import Record, UndecodableRecord
from dataflow_processor.spec.transformations import (
    CaseConfig,
    FilterConfig,
    FlattenConfig,
    MaskConfig,
    RemoveConfig,
    RouterConfig,
    SelectConfig,
    TimestampConfig,
    TransformationSpec,
)
from dataflow_processor.transforms.base import Transform
from dataflow_processor.transforms.camel_case import CamelCaseTransform
from dataflow_processor.transforms.filter import FilterTransform
from dataflow_processor.transforms.flatten import FlattenTransform
from dataflow_processor.transforms.mask import MaskTransform
from dataflow_processor.transforms.remove import RemoveTransform
from dataflow_processor.transforms.router import RouterTransform
from dataflow_processor.transforms.select import SelectTransform
from dataflow_processor.transforms.snake_case import SnakeCaseTransform
from dataflow_processor.transforms.timestamp import TimestampTransform


@dataclass(slots=True)
class Failure:
    """A record that could not be parsed or transformed."""

    record: Record
    error: str
    stage: str  # "parse" | "transform"
    transform_index: int | None = None
    transform_type: str | None = None


@dataclass(frozen=True)
class RouteInfo:
    """A router route: its chain-wide id, where it is in the spec, and its condition text."""

    route_id: int
    transform_index: int
    route_index: int
    condition: str


class TransformError(ValueError):
    """A transformation whose config cannot be compiled; the message names the field path."""


def build_transform(
    spec: TransformationSpec,
    index: int,
    route_ids: list[int] | None = None,
    condition_timeout: float = DEFAULT_TIMEOUT,
) -> Transform:
    config = spec.config
    if isinstance(config, TimestampConfig):
        return TimestampTransform(config, index)
    if isinstance(config, FlattenConfig):
        return FlattenTransform(config, index)
    if isinstance(config, FilterConfig):
        return FilterTransform(config, index, condition_timeout)
    if isinstance(config, MaskConfig):
        return MaskTransform(config, index)
    if isinstance(config, RouterConfig):
        return RouterTransform(config, index, route_ids, condition_timeout)
    if isinstance(config, SelectConfig):
        return SelectTransform(config, index)
    if isinstance(config, RemoveConfig):
        return RemoveTransform(config, index)
    if isinstance(config, CaseConfig):
        return SnakeCaseTransform(config, index) if spec.type == "snakeCase" else CamelCaseTransform(config, index)
    raise TransformError(f"unsupported transformation type {spec.type!r}")  # pragma: no cover


StatsFn = Callable[[Transform, int, int, float, int], None]


class TransformChain:
    """Compiled chain; ``routes`` lists every router route in id order."""

    def __init__(self, transforms: list[Transform], routes: list[RouteInfo], stats: StatsFn | None = None) -> None:
        self.transforms = transforms
        self.routes = routes
        self.stats = stats
        self.runs_cel = any(t.runs_cel for t in transforms)

    @classmethod
    def from_spec(
        cls,
        specs: list[TransformationSpec],
        stats: StatsFn | None = None,
        *,
        condition_timeout: float = DEFAULT_TIMEOUT,
    ) -> TransformChain:
        """Compile every transformation; ``condition_timeout`` is the seconds per record per CEL condition."""
        transforms: list[Transform] = []
        routes: list[RouteInfo] = []
        for index, spec in enumerate(specs):
            route_ids = None
            if isinstance(spec.config, RouterConfig):
                route_ids = []
                for r_index, route in enumerate(spec.config.routes):
                    route_ids.append(len(routes))
                    routes.append(RouteInfo(len(routes), index, r_index, route.condition))
            try:
                transforms.append(build_transform(spec, index, route_ids, condition_timeout))
            except ConditionError as exc:  # already names its field
                raise TransformError(str(exc)) from exc
            except ValueError as exc:
                raise TransformError(f"spec.transformations[{index}].{spec.type}: {exc}") from exc
        return cls(transforms, routes, stats)

    def run(self, batch: list[Record]) -> tuple[list[Record], list[Failure]]:
        failures: list[Failure] = []
        batch = parse_batch(batch, failures)
        stats = self.stats
        for transform in self.transforms:
            if not batch:
                break
            index, type_name = transform.index, transform.type_name

            def fail(record: Record, exc: Exception, index: int = index, type_name: str = type_name) -> None:
                failures.append(Failure(record, f"{type(exc).__name__}: {exc}", "transform", index, type_name))

            size_in = len(batch)
            started = time.perf_counter() if stats is not None else 0.0
            before = len(failures)
            batch = transform.apply(batch, fail)
            if stats is not None:
                stats(transform, size_in, len(batch), time.perf_counter() - started, len(failures) - before)
        return batch, failures


def parse_batch(batch: list[Record], failures: list[Failure]) -> list[Record]:
    """Decode raw payloads into JSON objects; failures are appended, good records returned."""
    loads = orjson.loads
    bad = False
    for record in batch:
        if record.value is not None:
            continue
        if type(record) is UndecodableRecord:
            failures.append(Failure(record, record.error, "parse"))
            bad = True
            continue
        try:
            value: Any = loads(record.raw) if record.raw is not None else None
        except orjson.JSONDecodeError as exc:
            failures.append(Failure(record, f"invalid JSON: {exc}", "parse"))
            bad = True
            continue
        if type(value) is not dict:
            failures.append(Failure(record, f"expected a JSON object, got {type(value).__name__}", "parse"))
            bad = True
            continue
        record.value = value
    if bad:
        return [record for record in batch if record.value is not None]
    return batch
