"""Connector registry: spec ``type`` name → factory building a Source or Sink from its typed config.

A connector module registers itself at import time::

    from dataflow_processor.connectors.registry import register_sink, register_source

    @register_source("kafka")
    class KafkaSource(Source):
        def __init__(self, config: KafkaSourceConfig, context: ConnectorContext) -> None: ...

Built-in type names map to modules imported on first use, as the spec's catalog names them
(``spec/catalog.py``: ``kafka`` → ``dataflow_processor.connectors.kafka``), so the processor only
imports the client libraries of the connectors a DataFlow uses. An unknown or missing connector is an error at start-up
("unsupported source type: x").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from dataflow_processor.connectors.base import ConnectorContext, Sink, Source
from dataflow_processor.spec.catalog import CONNECTORS
from dataflow_processor.spec.endpoints import SinkSpec, SourceSpec

SourceFactory = Callable[[Any, ConnectorContext], Source]
SinkFactory = Callable[[Any, ConnectorContext], Sink]

BUILTIN_MODULES = {connector.type: connector.module for connector in CONNECTORS}
"""Type name → the module that registers its source and sink (from the spec's catalog)."""

_sources: dict[str, SourceFactory] = {}
_sinks: dict[str, SinkFactory] = {}

F = TypeVar("F", bound=Callable[..., Any])


class UnsupportedConnectorError(ValueError):
    pass


def register_source(type_name: str) -> Callable[[F], F]:
    def decorate(factory: F) -> F:
        _sources[type_name] = factory
        return factory

    return decorate


def register_sink(type_name: str) -> Callable[[F], F]:
    def decorate(factory: F) -> F:
        _sinks[type_name] = factory
        return factory

    return decorate


def _ensure_loaded(type_name: str) -> None:
    module = BUILTIN_MODULES.get(type_name)
    if module is None:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise  # the connector exists but a dependency is missing: say so
        raise UnsupportedConnectorError(f"{type_name} connector is not available in this build") from exc


def create_source(spec: SourceSpec, context: ConnectorContext) -> Source:
    if spec.type not in _sources:
        _ensure_loaded(spec.type)
    factory = _sources.get(spec.type)
    if factory is None:
        raise UnsupportedConnectorError(f"unsupported source type: {spec.type}")
    return factory(spec.config, context)


def create_sink(spec: SinkSpec, context: ConnectorContext) -> Sink:
    if spec.type not in _sinks:
        _ensure_loaded(spec.type)
    factory = _sinks.get(spec.type)
    if factory is None:
        raise UnsupportedConnectorError(f"unsupported sink type: {spec.type}")
    return factory(spec.config, context)


def registered() -> tuple[list[str], list[str]]:
    """Type names with a registered source and sink (after whatever imports happened so far)."""
    return sorted(_sources), sorted(_sinks)
