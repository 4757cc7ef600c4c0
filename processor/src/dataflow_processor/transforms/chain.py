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

import functools
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from dataflow_processor.conditions import DEFAULT_TIMEOUT, ConditionError
from dataflow_processor.records import Record, UndecodableRecord
from dataflow_processor.spec.catalog import TRANSFORMATION_BY_TYPE
from dataflow_processor.spec.transformation_spec import TransformationSpec
from dataflow_processor.spec.transformations import RouterConfig
from dataflow_processor.transforms.base import BuildOptions, Transform


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


def transform_class(type_name: str) -> type[Transform]:
    """The :class:`Transform` the catalog names for ``type_name`` (``module:Class``), imported once."""
    entry = TRANSFORMATION_BY_TYPE.get(type_name)
    if entry is None:
        raise TransformError(f"unsupported transformation type {type_name!r}")
    return _import_class(entry.implementation)


@functools.cache
def _import_class(implementation: str) -> type[Transform]:
    module, _, name = implementation.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, Transform), implementation
    return cls


def build_transform(
    spec: TransformationSpec,
    index: int,
    route_ids: list[int] | None = None,
    condition_timeout: float = DEFAULT_TIMEOUT,
) -> Transform:
    options = BuildOptions(route_ids=route_ids, condition_timeout=condition_timeout)
    return transform_class(spec.type).build(spec.config, index, options)


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
