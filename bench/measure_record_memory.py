"""Memory one record costs at each place it waits, for the bounds in docs/memory.md.

Not a benchmark (no timing): it builds ``--records`` records of a typical shape (``--fields`` scalar
fields, ~``--value-bytes`` per string), measures the Python heap with ``tracemalloc`` (and Arrow's
allocator for the Nessie sink), and prints bytes per record and per JSON byte:

* ``parsed``: a Kafka record in a sink batch: raw bytes + ``Record`` + the parsed dict;
* ``pg-rows``: what the PostgreSQL sink adds while writing it (the converted row tuple);
* ``pg-source``: a PostgreSQL source row (the asyncpg row as a tuple + the JSON dict + ``Record``);
* ``nessie-arrow``: what the Nessie sink adds (the Arrow table of the batch);
* ``flatten-child``: one output of ``flatten`` over an array of small objects;
* ``baseline``: the resident size of a processor process with every connector imported.

``python bench/measure_record_memory.py --records 20000``
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson


def sample(i: int, fields: int, value_bytes: int) -> dict[str, Any]:
    value: dict[str, Any] = {"id": i, "amount": i * 1.25, "created_at": "2026-01-02T03:04:05.678901Z"}
    for f in range(fields - 3):
        value[f"field_{f}"] = ("x" * value_bytes) if f % 2 else i + f
    return value


def measure(build: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--fields", type=int, default=10)
    parser.add_argument("--value-bytes", type=int, default=16)
    args = parser.parse_args()
    n = args.records

    from dataflow_processor.connectors.postgresql import Column, row_builder
    from dataflow_processor.records import Position, Record
    from dataflow_processor.spec.transformations import FlattenConfig
    from dataflow_processor.transforms.flatten import FlattenTransform

    raws = [orjson.dumps(sample(i, args.fields, args.value_bytes)) for i in range(n)]
    json_bytes = sum(map(len, raws)) / n
    results: dict[str, float] = {}

    def parsed() -> list[Record]:
        out = []
        for i, raw in enumerate(raws):
            record = Record(None, bytes(raw), {"topic": "t", "partition": 0, "offset": i}, Position(0, i))
            record.value = orjson.loads(record.raw)  # type: ignore[arg-type]
            out.append(record)
        return out

    results["parsed"] = measure(parsed) / n
    records = parsed()
    first = records[0].value
    assert first is not None
    types = {int: ("int8", "bigint"), float: ("float8", "double precision"), str: ("text", "text")}
    columns = [Column(k, *types[type(v)], True) for k, v in first.items()]
    build = row_builder(tuple(first), columns)
    results["pg-rows"] = measure(lambda: [build(r.value) for r in records]) / n  # type: ignore[arg-type]
    values = [r.value for r in records]

    def pg_source() -> list[Record]:
        out = []
        for i, value in enumerate(values):
            row = tuple(value.values())  # type: ignore[union-attr]
            out.append((row, Record(dict(zip(value, row, strict=True)), None, {"table": "t", "id": i}, Position(0, i))))  # type: ignore[arg-type]
        return out  # type: ignore[return-value]

    results["pg-source"] = measure(pg_source) / n

    import pyarrow as pa  # type: ignore[import-untyped]
    from dataflow_processor.connectors.nessie import infer_schema, to_arrow

    schema = infer_schema(values)  # type: ignore[arg-type]
    arrow_before = pa.total_allocated_bytes()
    python = measure(lambda: to_arrow(values, schema))  # type: ignore[arg-type]
    table, _ = to_arrow(values, schema)  # type: ignore[arg-type]
    results["nessie-arrow"] = (python + pa.total_allocated_bytes() - arrow_before) / n
    del table

    parent = {"order": 1, "customer": "c" * 20, "items": [{"sku": f"s{i}", "qty": i} for i in range(n)]}
    flatten = FlattenTransform(FlattenConfig(field="items"), 0)
    root = Record(parent, orjson.dumps(parent), {}, Position(0, 0))
    results["flatten-child"] = measure(lambda: flatten.apply([root], lambda r, e: None)) / n

    print(f"records {n}, {args.fields} fields, {json_bytes:.0f} JSON bytes each")
    for name, per_record in results.items():
        print(f"{name:14} {per_record:8.0f} B/record  ({per_record / json_bytes:4.1f} x JSON)")
    # in a fresh interpreter: the process a DataFlow starts with, before any record
    probe = (
        "import resource, dataflow_processor.cli, dataflow_processor.admission\n"
        "for m in ('kafka', 'postgresql', 'trino', 'nessie'):\n"
        "    __import__('dataflow_processor.connectors.' + m)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    rss = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    print(f"baseline       {rss / 1024:8.0f} MiB resident with every connector imported")

if __name__ == "__main__":
    main()
