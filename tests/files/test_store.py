"""The attachment store's two back ends, against a real filesystem and a local S3-compatible
server (moto's, installed from PyPI), and the API storing uploads in S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from iaf.files.store import FileStore, LocalFileStore, S3FileStore, file_store, user_prefix
from iaf.settings import Settings
from tests.file_fixtures import png
from tests.helpers import free_port, serve_api, signup

BUCKET = "iaf-files"
KEYS = {"access_key_id": "testing", "secret": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret"],
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _s3_settings(settings: Settings, endpoint: str) -> Settings:
    return settings.model_copy(
        update={
            "files_backend": "s3",
            "files_s3_bucket": BUCKET,
            "files_s3_prefix": "attachments/",
            "files_s3_endpoint_url": endpoint,
            "files_s3_region": "us-east-1",
            "files_s3_access_key_id": KEYS["access_key_id"],
            "files_s3_secret_access_key": SecretStr(KEYS["secret"]),
        }
    )


def _contract(store: FileStore) -> None:
    store.put("users/u1/a", b"first", "text/plain; charset=utf-8")
    store.put("users/u1/b", png(), "image/png")
    store.put("users/u2/c", b"other person", "text/plain")
    assert store.get("users/u1/a") == b"first" and store.get("users/u1/b") == png()
    assert sorted(store.keys("users/u1/")) == ["users/u1/a", "users/u1/b"]
    store.delete("users/u1/a")
    store.delete("users/u1/a")  # deleting twice is fine (a retried step)
    assert store.keys("users/u1/") == ["users/u1/b"] and store.keys("users/u3/") == []
    assert store.keys("users/u2/") == ["users/u2/c"]


def test_local_store(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    _contract(store)
    with pytest.raises(ValueError):
        store.get("../outside")


def test_s3_store(settings: Settings, s3_endpoint: str) -> None:
    store = file_store(_s3_settings(settings, s3_endpoint))
    assert isinstance(store, S3FileStore)
    _contract(store)
    with pytest.raises(ValueError):
        file_store(settings.model_copy(update={"files_backend": "s3", "files_s3_bucket": None}))


async def test_the_api_keeps_uploads_in_s3(settings: Settings, worker: object, s3_endpoint: str):
    s3 = _s3_settings(settings, s3_endpoint)
    async with serve_api(s3) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await signup(http)
        room = await alice.new_room()
        upload = await alice.post(
            f"/api/chat/rooms/{room['id']}/attachments", files={"file": ("p.png", png())}
        )
        assert upload.status_code == 201, upload.text
        attachment_id = upload.json()["id"]
        await alice.say(room["id"], "in the bucket", attachment_ids=[attachment_id])
        bucket = file_store(s3)
        assert bucket.keys(user_prefix(alice.id)) == [f"{user_prefix(alice.id)}{attachment_id}"]
        download = await alice.get(f"/api/chat/attachments/{attachment_id}")
        assert download.content == png()
