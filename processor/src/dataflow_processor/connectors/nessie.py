"""Nessie source and sink: Iceberg tables through Nessie's Iceberg REST catalog (pyiceberg, in threads).

The catalog URI is ``{baseURL}/iceberg/{branch}[|{warehouse}]``, so every read and commit happens
on ``branch``. Auth: ``token`` → ``Authorization: Bearer``; ``basicAuth`` → ``Basic``
(``authenticationType`` AUTO picks bearer if a token is set, else basic if set, else none). S3:
``s3Endpoint``, ``s3Region``, ``accessKey``/``secretAccessKey`` (merged from their secret refs),
falling back to ``AWS_S3_ENDPOINT``/``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``; Nessie's own config (endpoint, path style) applies
for whatever is not set.

**Sink.** One ``write`` = one Iceberg append commit (one Parquet file per commit for an
unpartitioned table), so commit size is the sink's ``batchSize`` (default 10,000 rows) or what
arrived within ``batchFlushIntervalSeconds``. ``autoCreateTable`` creates a **typed** table from
the first batch (:func:`infer_schema`: ``long``, ``double``, ``boolean``, ``string``; objects and
lists as JSON text; all columns optional), or with ``rawMode`` the original's single ``data``
string column. Records are converted column by column to the table's Arrow schema; keys that are
not columns are dropped, missing ones are null; a value that does not fit its column fails that
record alone (errors sink). A table whose only column is ``data`` gets the whole record as JSON.

**Exactly once.** Each commit records the source positions it contains in its snapshot summary,
property ``dataflow.positions`` (:data:`POSITIONS_KEY`): a JSON object
``{"<namespace>/<name>/<role>": {"<partition>": [offset, count]}}`` — for each source partition
the highest offset written and how many outputs of that offset are in (a flatten fan-out may be
split across two commits). The property is cumulative: each commit copies the entries of other
writers from the snapshot it builds on. Before each write the sink refreshes the table and,
unless the table's entry is the one this process committed itself (the normal case), *replays*:
records of that partition below ``offset`` are skipped, and the first ``count`` outputs at
``offset``. So a processor killed after a commit but before its source committed the offset (or
a commit whose answer was lost) re-reads those records and does not write them again.
Failing records are always reported, never skipped.

**Source.** Incremental by sequence number: Nessie keeps only the current snapshot in the table
metadata, but that snapshot's manifest list still lists every data file with the **data sequence
number** of the commit that added it. A poll refreshes the table, reads only the manifests added
at or after the checkpoint's sequence number, and reads only the data files newer than the
checkpoint, in (sequence number, file path, row) order. The checkpoint (:mod:`.checkpoint`) is the
``[sequence, file, row]`` after the last acknowledged row, so an acknowledged row is never emitted
again across polls and restarts. Rows become JSON objects (:mod:`.values`). Meant for append-only
tables: delete files are not applied, and files rewritten by a compaction carry a new sequence
number, so their rows are emitted again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import decimal
import os
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    CommitStateUnknownException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFileContent
from pyiceberg.table import FileScanTask, Table

from dataflow_processor.connectors.base import (
    ConnectorContext,
    RecordFailure,
    Sink,
    TransientError,
    WriteResult,
)
from dataflow_processor.connectors.polling import PollingSource
from dataflow_processor.connectors.registry import register_sink, register_source
from dataflow_processor.connectors.values import INT_RANGES, as_int, parse_datetime, to_json_value
from dataflow_processor.records import Record
from dataflow_processor.spec.connectors import NessieSinkConfig, NessieSourceConfig, _NessieFields

POSITIONS_KEY = "dataflow.positions"

# ----------------------------------------------------------------------------- catalog


def catalog_uri(config: _NessieFields) -> str:
    assert config.base_url
    ref = quote(config.branch, safe="") + (f"|{config.warehouse}" if config.warehouse else "")
    return f"{config.base_url.rstrip('/')}/iceberg/{ref}"


def catalog_properties(config: _NessieFields) -> dict[str, Any]:
    props: dict[str, Any] = {"uri": catalog_uri(config)}
    kind = config.authentication_type
    if kind == "AUTO":
        kind = "BEARER" if config.token else ("BASIC" if config.basic_auth and config.basic_auth.username else "NONE")
    if kind == "BEARER" and config.token:
        props["token"] = config.token
    elif kind == "BASIC" and config.basic_auth and config.basic_auth.username:
        auth = config.basic_auth
        props["auth"] = {"type": "basic", "basic": {"username": auth.username, "password": auth.password or ""}}
    else:
        props["auth"] = {"type": "noop"}  # pyiceberg's default manager would send "Bearer None"
    env = os.environ
    endpoint = config.s3_endpoint or env.get("AWS_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3")
    if endpoint:
        props["s3.endpoint"] = endpoint
    region = config.s3_region or env.get("AWS_REGION")
    if region:
        props["s3.region"] = region
    access = config.access_key or env.get("AWS_ACCESS_KEY_ID")
    secret = config.secret_access_key or env.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        props["s3.access-key-id"] = access
        props["s3.secret-access-key"] = secret
    return props


def open_catalog(config: _NessieFields) -> RestCatalog:
    return RestCatalog("nessie", **catalog_properties(config))


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (CommitFailedException, CommitStateUnknownException, ConnectionError, TimeoutError, OSError)):
        return True
    name = type(exc).__name__
    return name in ("ServerError", "ServiceUnavailableError", "ConnectionError", "Timeout", "ReadTimeout")


# ----------------------------------------------------------------------------- sink: schema and values


def infer_schema(values: Sequence[Mapping[str, Any]]) -> pa.Schema:
    """A typed Arrow schema for ``autoCreateTable``: first non-null value per key decides, all nullable."""
    kinds: dict[str, pa.DataType | None] = {}
    for value in values:
        for key, item in value.items():
            if kinds.get(key) is not None:
                continue
            if item is None:
                kinds[key] = None
            elif isinstance(item, bool):
                kinds[key] = pa.bool_()
            elif isinstance(item, int) and INT_RANGES[64][0] <= item <= INT_RANGES[64][1]:
                kinds[key] = pa.int64()
            elif isinstance(item, float):
                kinds[key] = pa.float64()
            else:
                kinds[key] = pa.string()
    return pa.schema([pa.field(key, kind or pa.string(), nullable=True) for key, kind in kinds.items()])


def _not_a_number(value: Any) -> float:
    raise ValueError(f"{value!r} is not a number")


def _convert(value: Any, kind: pa.DataType) -> Any:
    """One value for an Arrow column of ``kind``; ``ValueError`` when it does not fit."""
    if value is None:
        return None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if isinstance(value, str):
            return value
        return orjson.dumps(value, default=str).decode()
    if pa.types.is_boolean(kind):
        if isinstance(value, bool):
            return value
        raise ValueError(f"{value!r} is not a boolean")
    if pa.types.is_integer(kind):
        return as_int(value)
    if pa.types.is_floating(kind):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value) if isinstance(value, str) else _not_a_number(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if pa.types.is_decimal(kind):
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a decimal")
        return decimal.Decimal(str(value))
    if pa.types.is_timestamp(kind):
        moment = parse_datetime(value)
        if kind.tz is None:
            return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if pa.types.is_date(kind):
        if isinstance(value, str):
            return dt.date.fromisoformat(value[:10])
        raise ValueError(f"{value!r} is not a date")
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        if isinstance(value, str):
            return base64.b64decode(value, validate=True)
        raise ValueError(f"{value!r} is not base64")
    raise ValueError(f"unsupported column type {kind}")


_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError)


def to_arrow(values: Sequence[Mapping[str, Any]], schema: pa.Schema) -> tuple[pa.Table, list[tuple[int, str]]]:
    """The rows as an Arrow table of ``schema``, and ``(index, error)`` of the rows that do not fit.

    Fast path: the whole batch in one ``pa.Table.from_pylist`` (C++), after a check that no
    integer column gets a float (Arrow would truncate ``1.5`` to ``1``). When Arrow refuses, each
    column is built on its own, and a column that still fails is converted value by value
    (:func:`_convert`) to find the bad rows.
    """
    integers = [field.name for field in schema if pa.types.is_integer(field.type)]
    required = [field.name for field in schema if not field.nullable]
    try:
        if any(value.get(name).__class__ is float for value in values for name in integers):
            raise ValueError("float in an integer column")
        table = pa.Table.from_pylist(list(values), schema=schema)
        if not any(table.column(name).null_count for name in required):
            return table, []
    except _ARROW_ERRORS:
        pass
    bad: dict[int, str] = {}
    columns: list[list[Any]] = []
    for field in schema:
        column = [value.get(field.name) for value in values]
        exact = not (field.name in integers and any(item.__class__ is float for item in column))
        try:
            if not exact:
                raise ValueError("float in an integer column")
            pa.array(column, type=field.type)
        except _ARROW_ERRORS:
            converted = []
            for index, item in enumerate(column):
                try:
                    converted.append(_convert(item, field.type))
                except (ValueError, TypeError, ArithmeticError, OverflowError) as exc:
                    bad.setdefault(index, f"nessie: column {field.name!r}: {exc}")
                    converted.append(None)
            column = converted
        if not field.nullable:
            for index, item in enumerate(column):
                if item is None:
                    bad.setdefault(index, f"nessie: column {field.name!r} is required")
        columns.append(column)
    keep = [i for i in range(len(values)) if i not in bad]
    if bad:
        columns = [[column[i] for i in keep] for column in columns]
    arrays = [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema), sorted(bad.items())


# ----------------------------------------------------------------------------- sink: positions


PartitionState = tuple[int, int]  # (highest offset written, outputs of that offset written)


def read_positions(table: Table, writer: str) -> tuple[dict[str, Any], dict[str, PartitionState]]:
    """All writers' entries of the current snapshot's summary, and this writer's, parsed."""
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return {}, {}
    text = snapshot.summary.get(POSITIONS_KEY)
    if not text:
        return {}, {}
    everyone = orjson.loads(text)
    mine = {str(p): (int(s[0]), int(s[1])) for p, s in everyone.get(writer, {}).items()}
    return everyone, mine


class Dedup:
    """Which records of a batch were already committed (see "Exactly once" in the module docstring).

    :meth:`plan` does not change the object: a batch that fails and is retried is planned again
    from the same state. :meth:`settle` adopts a plan once its batch is committed (or had nothing
    left to commit).
    """

    def __init__(self) -> None:
        self.mine: dict[str, PartitionState] = {}  # positions of this process's last commit
        self.replaying: dict[str, PartitionState] = {}  # per partition: the table state being replayed
        self.skip: dict[str, PartitionState] = {}  # per partition: (offset, outputs at it still to skip)

    def plan(
        self, records: Sequence[Record], table_state: Mapping[str, PartitionState]
    ) -> tuple[list[bool], tuple[dict[str, PartitionState], dict[str, PartitionState]]]:
        replaying, skip = dict(self.replaying), dict(self.skip)
        for partition, state in table_state.items():
            if self.mine.get(partition) != state and replaying.get(partition) != state:
                replaying[partition] = state  # someone else's (an earlier process's) commit: replay it
                skip[partition] = state
        keep: list[bool] = []
        for record in records:
            if record.position is None:
                keep.append(True)
                continue
            partition, offset = str(record.position.partition), record.position.offset
            pending = skip.get(partition)
            if pending is None:
                keep.append(True)
            elif offset < pending[0]:
                keep.append(False)
            elif offset == pending[0] and pending[1] > 0:
                skip[partition] = (pending[0], pending[1] - 1)
                keep.append(False)
            else:  # past what was committed: the replay of this partition is over
                del skip[partition]
                keep.append(True)
        return keep, (replaying, skip)

    def settle(
        self,
        plan: tuple[dict[str, PartitionState], dict[str, PartitionState]],
        committed: Mapping[str, PartitionState] | None = None,
    ) -> None:
        self.replaying, self.skip = plan
        if committed is not None:
            self.mine = dict(committed)

    def advance(self, records: Sequence[Record], base: Mapping[str, PartitionState]) -> dict[str, PartitionState]:
        """The positions after committing ``records`` on top of ``base``."""
        state = dict(base)
        for record in records:
            if record.position is None:
                continue
            partition, offset = str(record.position.partition), record.position.offset
            top, count = state.get(partition, (-1, 0))
            if offset > top:
                state[partition] = (offset, 1)
            elif offset == top:
                state[partition] = (top, count + 1)
        return state


# ----------------------------------------------------------------------------- sink


@register_sink("nessie")
class NessieSink(Sink):
    type_name = "nessie"

    def __init__(self, config: NessieSinkConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self.batch_size = config.batch_size
        self.flush_interval = config.batch_flush_interval_seconds
        assert config.namespace and config.table
        self.identifier = (config.namespace, config.table)
        self.writer = f"{context.namespace}/{context.name}/{context.role}"
        self.catalog: RestCatalog | None = None
        self.table: Table | None = None
        self.dedup = Dedup()
        self.commits = 0
        self.skipped = 0  # records found already committed (replay after a crash)

    async def connect(self) -> None:
        try:
            await asyncio.to_thread(self._connect)
        except Exception as exc:
            raise (TransientError(f"nessie: {exc}") if _transient(exc) else exc) from exc

    def _connect(self) -> None:
        self.catalog = open_catalog(self.config)
        try:
            self.table = self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            if not self.config.auto_create_table:
                raise RuntimeError(
                    f"nessie table {'.'.join(self.identifier)} does not exist and autoCreateTable is not set"
                ) from None
            if self.config.raw_mode:
                self._create(pa.schema([pa.field("data", pa.string())]))

    def _create(self, schema: pa.Schema) -> None:
        assert self.catalog is not None
        with contextlib.suppress(NamespaceAlreadyExistsError):
            self.catalog.create_namespace(self.identifier[0])
        try:
            self.table = self.catalog.create_table(self.identifier, schema=schema)
            self.context.logger.info("nessie: created table %s with %s", ".".join(self.identifier), schema.names)
        except TableAlreadyExistsError:
            self.table = self.catalog.load_table(self.identifier)

    @property
    def raw_column(self) -> bool:
        assert self.table is not None
        return self.config.raw_mode or [f.name for f in self.table.schema().fields] == ["data"]

    async def write(self, batch: list[Record]) -> WriteResult:
        try:
            return await asyncio.to_thread(self._write, batch)
        except Exception as exc:
            if _transient(exc):
                raise TransientError(f"nessie: {type(exc).__name__}: {exc}") from exc
            raise

    def _write(self, batch: list[Record]) -> WriteResult:
        values = [record.value or {} for record in batch]
        if self.table is None:
            self._create(infer_schema(values))
        assert self.table is not None
        self.table = self.table.refresh()
        if self.raw_column:
            values = [
                {"data": orjson.dumps(value, default=str).decode()}
                if self.config.raw_mode or "data" not in value
                else value
                for value in values
            ]
        schema = self.table.schema().as_arrow()
        everyone, table_state = read_positions(self.table, self.writer)
        keep, plan = self.dedup.plan(batch, table_state)
        skipped = keep.count(False)
        if skipped:
            self.skipped += skipped
            self.context.logger.info(
                "nessie sink: %d records already committed to %s (replay), skipped",
                skipped,
                ".".join(self.identifier),
                extra={"skipped": skipped, "positions": {p: list(s) for p, s in table_state.items()}},
            )
        chosen = [i for i, k in enumerate(keep) if k]
        arrow, bad = to_arrow([values[i] for i in chosen], schema)
        failures = [RecordFailure(chosen[i], error, "invalid_data") for i, error in bad]
        rejected = {i for i, _ in bad}
        written = [batch[i] for n, i in enumerate(chosen) if n not in rejected]
        if not written:
            self.dedup.settle(plan)
            return WriteResult(failures)
        # this process's own positions carry over a commit by a writer that dropped the property
        state = self.dedup.advance(written, {**self.dedup.mine, **table_state})
        everyone[self.writer] = {p: list(s) for p, s in state.items()}
        self.table.append(arrow, snapshot_properties={POSITIONS_KEY: orjson.dumps(everyone).decode()})
        self.dedup.settle(plan, state)
        self.commits += 1
        return WriteResult(failures)

    async def close(self) -> None:
        self.table = None
        self.catalog = None


# ----------------------------------------------------------------------------- source

# (data sequence number, data file path, row): files before (sequence, path) are done, and rows
# before ``row`` of that file; row -1 = that whole file is done
Cursor = tuple[int, str, int]
# A row read: its file's (sequence, path), its index in the file, the file's row count, the row.
FileRow = tuple[int, str, int, int, dict[str, Any]]


@register_source("nessie")
class NessieSource(PollingSource[FileRow, Cursor]):
    type_name = "nessie"

    def __init__(self, config: NessieSourceConfig, context: ConnectorContext) -> None:
        super().__init__(context)
        self.config = config
        self.poll_interval = config.poll_interval
        assert config.namespace and config.table
        self.identifier = (config.namespace, config.table)
        self.partition = f"{config.namespace}.{config.table}"
        self.catalog: RestCatalog | None = None
        self.table: Table | None = None
        self._metadata = {"namespace": config.namespace, "table": config.table}
        self.files_read = 0

    # -------------------------------------------------------------- hooks: what the cursor is

    def identity(self) -> dict[str, Any]:
        return {"catalog": catalog_uri(self.config), "table": ".".join(self.identifier)}

    def cursor_of(self, row: FileRow) -> Cursor:
        sequence, path, index, count, _ = row
        return (sequence, path, index + 1 if index + 1 < count else -1)

    def encode_cursor(self, cursor: Cursor) -> Any:
        return list(cursor)

    def decode_cursor(self, stored: Any) -> Cursor | None:
        if not isinstance(stored, list) or len(stored) != 3:
            return None
        sequence, path, row = stored
        return (int(sequence), str(path), int(row))

    def to_record(self, row: FileRow) -> tuple[dict[str, Any], Mapping[str, Any]]:
        return {key: to_json_value(item) for key, item in row[4].items()}, self._metadata

    def describe(self) -> str:
        return ".".join(self.identifier)

    # -------------------------------------------------------------- hooks: the server

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self._connect)
        except Exception as exc:
            raise (TransientError(f"nessie: {exc}") if _transient(exc) else exc) from exc

    async def shut(self) -> None:
        self.table = None
        self.catalog = None

    def _connect(self) -> None:
        self.catalog = open_catalog(self.config)
        self.table = self.catalog.load_table(self.identifier)

    def _new_files(self, after: Cursor | None = None) -> list[tuple[int, str, Any]]:
        """Data files with rows after the cursor, in cursor order, from the current snapshot."""
        assert self.table is not None
        self.table = self.table.refresh()
        snapshot = self.table.current_snapshot()
        if snapshot is None:
            return []
        io = self.table.io
        cursor_seq, cursor_path, cursor_row = after or (-1, "", 0)
        files = []
        for manifest in snapshot.manifests(io):
            if manifest.sequence_number < cursor_seq:
                continue  # added before the cursor's commit: nothing newer inside
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                data_file = entry.data_file
                if data_file.content != DataFileContent.DATA or data_file.record_count == 0:
                    continue  # an empty file has no row to move the cursor past: never list it
                sequence = entry.sequence_number if entry.sequence_number is not None else manifest.sequence_number
                key = (sequence, data_file.file_path)
                if key > (cursor_seq, cursor_path) or (key == (cursor_seq, cursor_path) and cursor_row != -1):
                    files.append((sequence, data_file.file_path, data_file))
        files.sort(key=lambda f: (f[0], f[1]))
        return files

    def _read_file(self, data_file: Any) -> list[dict[str, Any]]:
        assert self.table is not None
        scan = ArrowScan(self.table.metadata, self.table.io, self.table.schema(), AlwaysTrue())
        rows: list[dict[str, Any]] = []
        for batch in scan.to_record_batches([FileScanTask(data_file)]):
            rows.extend(batch.to_pylist())
        self.files_read += 1
        return rows

    async def pages(self, after: Cursor | None, page_size: int) -> AsyncGenerator[list[FileRow], None]:
        """The rows of each data file newer than the cursor, one file at a time."""
        for sequence, path, data_file in await asyncio.to_thread(self._new_files, after):
            rows = await asyncio.to_thread(self._read_file, data_file)
            first = after[2] if after is not None and (sequence, path) == after[:2] else 0
            count = len(rows)
            yield [(sequence, path, index, count, rows[index]) for index in range(first, count)]
