"""Micro-benchmark: records/s through a 3-step transformation chain on ~150-byte JSON records.

Measures, on one core, the processor's real hot path per batch of 500: building ``Record`` objects
from raw bytes (what a connector hands over), the parse stage (orjson decode), the chain
``timestamp → filter ($.status == 'paid') → select``, and encoding the surviving records (what a
sink does). The baseline is JSON decode + encode of the same records with the same library and
nothing else; the ratio says what the chain costs on top of the unavoidable JSON work. It can
exceed 1: the filter drops ~20 % of the records and select shrinks the rest before they are
encoded, so the chain encodes less than the baseline does. Best of ``--repeat`` runs. Prints one
JSON object.

    python bench/bench_transform_chain.py [--records 200000] [--batch 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "processor" / "src"))

import orjson
from dataflow_processor.records import Record
from dataflow_processor.spec.transformation_spec import TransformationSpec
from dataflow_processor.transforms.chain import TransformChain

CHAIN = [
    {"type": "timestamp", "timestamp": {"fieldName": "ingested_at"}},
    {"type": "filter", "filter": {"condition": "$.status == 'paid'"}},
    {"type": "select", "select": {"fields": ["id", "status", "amount", "customer", "ingested_at"]}},
]


def make_records(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    statuses = ["paid"] * 8 + ["pending", "refunded"]
    out = []
    for i in range(count):
        value = {
            "id": i,
            "status": rng.choice(statuses),
            "amount": round(rng.uniform(1, 999), 2),
            "currency": "EUR",
            "customer": f"c-{rng.randrange(10**6):06d}",
            "region": rng.choice(["eu-west", "us-east", "ap-south"]),
            "items": rng.randrange(1, 9),
            "note": "x" * rng.randrange(23, 31),
        }
        out.append(orjson.dumps(value))
    return out


def run_chain(raws: list[bytes], batch: int, chain: TransformChain) -> tuple[float, int]:
    dumps = orjson.dumps
    written = 0
    started = time.perf_counter()
    for start in range(0, len(raws), batch):
        records = [Record(raw=raw) for raw in raws[start : start + batch]]
        out, failures = chain.run(records)
        encoded = [dumps(r.value) for r in out]
        written += len(encoded)
        assert not failures
    return time.perf_counter() - started, written


def run_baseline(raws: list[bytes], batch: int) -> float:
    loads, dumps = orjson.loads, orjson.dumps
    started = time.perf_counter()
    for start in range(0, len(raws), batch):
        [dumps(loads(raw)) for raw in raws[start : start + batch]]
    return time.perf_counter() - started


def run_stdlib_baseline(raws: list[bytes], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(raws), batch):
        [json.dumps(json.loads(raw)) for raw in raws[start : start + batch]]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    raws = make_records(args.records)
    chain = TransformChain.from_spec([TransformationSpec.model_validate(s) for s in CHAIN])
    gc.collect()
    chain_times, base_times, std_times = [], [], []
    written = 0
    for _ in range(args.repeat):
        seconds, written = run_chain(raws, args.batch, chain)
        chain_times.append(seconds)
        base_times.append(run_baseline(raws, args.batch))
        std_times.append(run_stdlib_baseline(raws, args.batch))
    n = len(raws)
    chain_rate = n / min(chain_times)
    base_rate = n / min(base_times)
    result = {
        "benchmark": "transform_chain",
        "chain": [s["type"] for s in CHAIN],
        "records": n,
        "avg_record_bytes": round(sum(map(len, raws)) / n, 1),
        "batch_size": args.batch,
        "records_kept": written,
        "records_per_second": round(chain_rate),
        "baseline_json_decode_encode_records_per_second": round(base_rate),
        "ratio_to_baseline": round(chain_rate / base_rate, 3),
        "stdlib_json_decode_encode_records_per_second": round(n / min(std_times)),
        "target_records_per_second": 200_000,
        "meets_target": chain_rate >= 200_000,
        "json_library": f"orjson {orjson.__version__}",
        "python": platform.python_version(),
        "cores_used": 1,
        "repeat": args.repeat,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
