"""Shared helpers for the processor's unit and pipeline tests."""

from __future__ import annotations

import asyncio
from typing import Any

from dataflow_processor.records import Record
from dataflow_processor.spec.transformation_spec import TransformationSpec
from dataflow_processor.transforms.chain import Failure, TransformChain


def chain_of(*specs: dict[str, Any]) -> TransformChain:
    return TransformChain.from_spec([TransformationSpec.model_validate(s) for s in specs])


def run_chain(chain: TransformChain, *values: Any) -> tuple[list[dict[str, Any]], list[Failure]]:
    records = [Record(v) if isinstance(v, dict) else Record(raw=v) for v in values]
    out, failures = chain.run(records)
    return [r.value for r in out if r.value is not None], failures


def apply(spec: dict[str, Any], *values: Any) -> list[dict[str, Any]]:
    out, failures = run_chain(chain_of(spec), *values)
    assert not failures, failures
    return out


async def wait_for(condition: Any, limit: float = 5.0) -> None:
    """Poll ``condition`` on the running loop until it holds; fail after ``limit`` seconds."""
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)
