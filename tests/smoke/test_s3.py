"""Smoke test of the S3-compatible store (versitygw): signed put/get/list/delete through boto3."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import S3Store

pytestmark = pytest.mark.smoke


def client(s3: S3Store, secret: str | None = None) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=secret or s3.secret_key,
        region_name=s3.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_bucket_exists(s3_store: S3Store) -> None:
    names = [b["Name"] for b in client(s3_store).list_buckets()["Buckets"]]
    assert s3_store.bucket in names


def test_put_get_list_delete(s3_store: S3Store) -> None:
    s3 = client(s3_store)
    prefix = f"smoke/{uuid.uuid4().hex}/"
    body = b"dataflow " * 1000
    s3.put_object(Bucket=s3_store.bucket, Key=prefix + "a/one.bin", Body=body)
    s3.put_object(Bucket=s3_store.bucket, Key=prefix + "two.txt", Body=b"2", ContentType="text/plain")

    got = s3.get_object(Bucket=s3_store.bucket, Key=prefix + "a/one.bin")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)

    listed = s3.list_objects_v2(Bucket=s3_store.bucket, Prefix=prefix)
    assert sorted(o["Key"] for o in listed["Contents"]) == [prefix + "a/one.bin", prefix + "two.txt"]
    head = s3.head_object(Bucket=s3_store.bucket, Key=prefix + "two.txt")
    assert head["ContentType"] == "text/plain"

    for key in (prefix + "a/one.bin", prefix + "two.txt"):
        s3.delete_object(Bucket=s3_store.bucket, Key=key)
    assert s3.list_objects_v2(Bucket=s3_store.bucket, Prefix=prefix)["KeyCount"] == 0


def test_multipart_upload(s3_store: S3Store) -> None:
    s3 = client(s3_store)
    key = f"smoke/{uuid.uuid4().hex}/multi.bin"
    part1, part2 = b"a" * (5 * 1024 * 1024), b"b" * 1024
    up = s3.create_multipart_upload(Bucket=s3_store.bucket, Key=key)
    parts = []
    for n, data in enumerate((part1, part2), start=1):
        r = s3.upload_part(Bucket=s3_store.bucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(
        Bucket=s3_store.bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket=s3_store.bucket, Key=key)["Body"].read() == part1 + part2
    s3.delete_object(Bucket=s3_store.bucket, Key=key)


def test_wrong_secret_is_refused(s3_store: S3Store) -> None:
    with pytest.raises(ClientError) as e:
        client(s3_store, secret="not-the-secret").list_buckets()
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
