"""Smoke test of Nessie: its native API, and Iceberg tables through its REST catalog on the S3 store.

pyiceberg (pinned by the processor) creates, appends to and reads an Iceberg table through Nessie's
Iceberg REST endpoint; the data and metadata files are then listed in the S3 bucket directly, and the
table is looked up through Nessie's own API. A branch shows that the catalog is Nessie's: a table
committed on a branch is invisible on ``main``.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from pyarrow import fs
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

pytestmark = [pytest.mark.smoke, pytest.mark.timeout(180)]

Nessie = Any  # tests/conftest.py's Nessie: url, iceberg_url, warehouse
S3Store = Any  # tests/conftest.py's S3Store: endpoint, access_key, secret_key, region, bucket

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "name", StringType(), required=False),
)
ARROW_SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])


def api(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def catalog(nessie: Nessie, s3: S3Store, ref: str | None = None) -> Catalog:
    """Nessie's Iceberg REST catalog; `ref` selects a branch the way the connector does (`/iceberg/<ref>|<wh>`)."""
    where = {"uri": nessie.iceberg_url, "warehouse": nessie.warehouse}
    if ref is not None:  # the warehouse is then part of the URI, not a parameter
        where = {"uri": f"{nessie.iceberg_url}/{ref}|{nessie.warehouse}"}
    return load_catalog(
        f"nessie-{ref or 'main'}",
        type="rest",
        **where,
        **{
            "s3.access-key-id": s3.access_key,
            "s3.secret-access-key": s3.secret_key,
            "s3.region": s3.region,
        },
    )


def s3fs(s3: S3Store) -> fs.S3FileSystem:
    endpoint = urllib.parse.urlsplit(s3.endpoint)
    return fs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        region=s3.region,
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
    )


def s3_files(s3: S3Store, location: str) -> list[str]:
    """Object keys (bucket-relative) under an s3:// location, read from the store itself."""
    assert location.startswith(f"s3://{s3.bucket}/"), location
    sel = fs.FileSelector(location.removeprefix("s3://"), recursive=True, allow_not_found=True)
    return sorted(
        i.path.removeprefix(f"{s3.bucket}/") for i in s3fs(s3).get_file_info(sel) if i.type == fs.FileType.File
    )


def s3_remove(s3: S3Store, location: str) -> None:
    """Delete every object under `location` and the (posix) directories holding them, deepest first:
    versitygw's posix backend refuses to delete a directory before what is in it, which a bulk delete
    such as pyarrow's delete_dir may try."""
    store = s3fs(s3)
    root = location.removeprefix("s3://").rstrip("/")
    sel = fs.FileSelector(root, recursive=True, allow_not_found=True)
    for info in sorted(store.get_file_info(sel), key=lambda i: -i.path.count("/")):
        if info.type == fs.FileType.File:
            store.delete_file(info.path)
        else:
            store.delete_dir(info.path)
    if store.get_file_info(root).type != fs.FileType.NotFound:
        store.delete_dir(root)


def rows(n: int, start: int = 1) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({"id": ids, "name": [f"row-{i}" for i in ids]}, schema=ARROW_SCHEMA)


@pytest.fixture
def namespace(nessie: Nessie, s3_store: S3Store) -> Iterator[str]:
    """A fresh namespace on main; afterwards its tables and the namespace are dropped, and every S3
    object under s3://<bucket>/<namespace>/ (where Nessie puts its tables, on any branch) is deleted."""
    cat = catalog(nessie, s3_store)
    ns = f"smoke_{uuid.uuid4().hex[:10]}"
    cat.create_namespace(ns)
    yield ns
    for ident in cat.list_tables(ns):
        cat.drop_table(ident)
    cat.drop_namespace(ns)
    s3_remove(s3_store, f"s3://{s3_store.bucket}/{ns}/")
    assert s3_files(s3_store, f"s3://{s3_store.bucket}/{ns}/") == []


def test_native_api_has_main_branch(nessie: Nessie) -> None:
    config = api("GET", f"{nessie.url}/api/v2/config")
    assert config["defaultBranch"] == "main"
    assert config["maxSupportedApiVersion"] >= 2
    ref = api("GET", f"{nessie.url}/api/v2/trees/main")["reference"]
    assert ref["type"] == "BRANCH" and ref["name"] == "main"
    assert len(ref["hash"]) == 64


def test_iceberg_rest_config_points_at_the_s3_warehouse(nessie: Nessie, s3_store: S3Store) -> None:
    query = urllib.parse.urlencode({"warehouse": nessie.warehouse})
    config = api("GET", f"{nessie.iceberg_url}/v1/config?{query}")
    assert config["defaults"]["warehouse"].rstrip("/") == f"s3://{s3_store.bucket}"
    assert config["defaults"]["prefix"] == f"main%7C{nessie.warehouse}"
    assert config["overrides"]["s3.endpoint"].rstrip("/") == s3_store.endpoint.rstrip("/")
    assert config["overrides"]["s3.path-style-access"] == "true"


def test_table_round_trip_lands_in_s3(nessie: Nessie, s3_store: S3Store, namespace: str) -> None:
    cat = catalog(nessie, s3_store)
    ident = f"{namespace}.events"
    table = cat.create_table(ident, schema=SCHEMA)
    assert table.location().startswith(f"s3://{s3_store.bucket}/{namespace}/")
    assert table.io.properties.get("s3.remote-signing-enabled") == "false"

    table.append(rows(3))
    table.append(rows(2, start=4))

    # A fresh catalog client sees both commits.
    reread = catalog(nessie, s3_store).load_table(ident)
    got = reread.scan().to_arrow().sort_by("id")
    assert got.to_pylist() == rows(5).to_pylist()
    snapshot = reread.current_snapshot()
    assert snapshot is not None and snapshot.sequence_number == 2
    assert snapshot.summary is not None and snapshot.summary["total-records"] == "5"

    # The files are really in the bucket: pyiceberg wrote the Parquet data, Nessie the table metadata.
    keys = s3_files(s3_store, reread.location())
    data = [k for k in keys if "/data/" in k and k.endswith(".parquet")]
    assert len(data) == 2, keys
    assert reread.metadata_location.removeprefix(f"s3://{s3_store.bucket}/") in keys
    assert any(k.endswith(".avro") for k in keys), keys  # manifests / manifest lists

    # Nessie's own API knows the table and where its current metadata is.
    content = api("GET", f"{nessie.url}/api/v2/trees/main/contents/{namespace}.events")["content"]
    assert content["type"] == "ICEBERG_TABLE"
    assert content["metadataLocation"] == reread.metadata_location
    assert content["snapshotId"] == snapshot.snapshot_id
    # Each catalog change is a Nessie commit on main (Nessie keeps the history there, and only the
    # current snapshot in the table metadata).
    query = urllib.parse.urlencode({"fetch": "ALL", "filter": f"operations.exists(op, op.key == '{ident}')"})
    log = api("GET", f"{nessie.url}/api/v2/trees/main/history?{query}")["logEntries"]
    assert [e["commitMeta"]["message"].split(" ")[0] for e in log] == ["Update", "Update", "Create"]


def test_branch_isolates_commits(nessie: Nessie, s3_store: S3Store, namespace: str) -> None:
    main = api("GET", f"{nessie.url}/api/v2/trees/main")["reference"]
    branch = f"smoke_{uuid.uuid4().hex[:10]}"
    created = api(
        "POST",
        f"{nessie.url}/api/v2/trees?" + urllib.parse.urlencode({"name": branch, "type": "BRANCH"}),
        main,
    )["reference"]
    assert created["name"] == branch and created["hash"] == main["hash"]
    try:
        on_branch = catalog(nessie, s3_store, ref=branch)
        table = on_branch.create_table(f"{namespace}.only_on_branch", schema=SCHEMA)
        table.append(rows(2))
        assert on_branch.load_table(f"{namespace}.only_on_branch").scan().to_arrow().num_rows == 2

        with pytest.raises(NoSuchTableError):
            catalog(nessie, s3_store).load_table(f"{namespace}.only_on_branch")
        head = api("GET", f"{nessie.url}/api/v2/trees/{branch}")["reference"]
        assert head["hash"] != main["hash"]
        assert table.location().startswith(f"s3://{s3_store.bucket}/{namespace}/")
    finally:
        head = api("GET", f"{nessie.url}/api/v2/trees/{branch}")["reference"]
        api("DELETE", f"{nessie.url}/api/v2/trees/{branch}@{head['hash']}")
