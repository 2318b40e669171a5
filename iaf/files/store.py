"""Where attachment bytes live: a directory under DATA_DIR, or an S3-compatible bucket.

Both are synchronous (files, boto3); callers run them in a thread. Keys are
`users/{uploader_id}/{attachment_id}`, so a person's files are one prefix: the erasure
deletes it and its verification lists it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from iaf.settings import Settings


class FileStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def keys(self, prefix: str) -> list[str]: ...


def user_prefix(user_id: object) -> str:
    return f"users/{user_id}/"


class LocalFileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("key outside the store")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.chmod(0o600)
        os.replace(partial, path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root.resolve())) for p in base.rglob("*") if p.is_file()
        )


class S3FileStore:
    """Any S3-compatible store (AWS, MinIO, Ceph, Garage, ...) through boto3."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        return bytes(response["Body"].read())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            found += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
        return found


def file_store(settings: Settings) -> FileStore:
    """The store the settings name: `FILES_BACKEND=s3` with its bucket, else DATA_DIR/files."""
    if settings.files_backend == "local":
        return LocalFileStore(settings.data_dir / "files")
    import boto3

    secret = settings.files_s3_secret_access_key
    client = boto3.client(
        "s3",
        endpoint_url=settings.files_s3_endpoint_url,
        region_name=settings.files_s3_region,
        aws_access_key_id=settings.files_s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
    )
    if not settings.files_s3_bucket:
        raise ValueError("FILES_BACKEND=s3 needs FILES_S3_BUCKET")
    return S3FileStore(client, settings.files_s3_bucket, settings.files_s3_prefix)
