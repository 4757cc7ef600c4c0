"""A real processor process on in-process connectors, for the SIGTERM test.

Writes ``written.jsonl`` (ids the sink received), ``committed.json`` (last ack) and ``read.txt``
(records read from the source) into the directory given as argv[1]; prints READY when serving.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from dataflow_processor.cli import serve
from dataflow_processor.connectors.memory import MemorySink, MemorySource
from dataflow_processor.logging_json import configure_logging
from dataflow_processor.pipeline import Pipeline, PipelineSettings
from dataflow_processor.spec.transformation_spec import TransformationSpec
from dataflow_processor.transforms.chain import TransformChain


class FileSink(MemorySink):
    def __init__(self, path: Path) -> None:
        super().__init__(batch_size=10_000)
        self.flush_interval = 0.5  # plenty of records are in flight when SIGTERM arrives
        self.file = path.open("a")

    async def write(self, batch):  # type: ignore[no-untyped-def]
        result = await super().write(batch)
        for record in batch:
            self.file.write(json.dumps(record.value) + "\n")
        self.file.flush()
        return result


class FileAckSource(MemorySource):
    def __init__(self, out: Path) -> None:
        super().__init__(follow=True, partitions=2)
        self.out = out

    async def ack(self, watermarks):  # type: ignore[no-untyped-def]
        await super().ack(watermarks)
        (self.out / "committed.json").write_text(json.dumps({str(k): v for k, v in self.committed.items()}))


async def main(out: Path) -> int:
    configure_logging("test", "sigterm", "info")
    source = FileAckSource(out)
    sink = FileSink(out / "written.jsonl")
    chain = TransformChain.from_spec(
        [TransformationSpec.model_validate({"type": "timestamp", "timestamp": {"fieldName": "at"}})]
    )
    pipeline = Pipeline(
        source=source,
        chain=chain,
        sink=sink,
        namespace="test",
        name="sigterm",
        settings=PipelineSettings(batch_size=50, linger_seconds=0.005, commit_interval=0.2, shutdown_timeout=10),
    )

    async def produce() -> None:
        n = 0
        while not pipeline.stopping:
            source.push([{"id": n}])
            n += 1
            if n == 50:
                print("READY", flush=True)
            await asyncio.sleep(0.002)

    producer = asyncio.create_task(produce())
    code = await serve(pipeline, health_port=0)
    producer.cancel()
    (out / "read.txt").write_text(str(source.read_count))
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
