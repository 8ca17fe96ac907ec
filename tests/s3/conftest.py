"""An S3-compatible server for the tests: moto's server mode on a free 127.0.0.1 port, one per session.

Each test gets a bucket of its own (``bucket``) and settings that point at it
under a key prefix, so a test can check that nothing was written outside it.
"""
from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.servers import console_script, free_port, stop_process, wait_for_http

ACCESS_KEY, SECRET_KEY, REGION = "test-access-key", "test-secret-key", "us-east-1"
PREFIX = "registry/"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([console_script("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited:\n{log_path.read_text()}")

    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", 30, alive=alive)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        stop_process(process)


@dataclass(frozen=True)
class Bucket:
    server: S3Server
    name: str
    client: Any

    def keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", []))

    def settings(self) -> dict[str, str]:
        """The ``s3_*`` settings (either side) of this bucket, under ``PREFIX``."""
        return {"s3_bucket": self.name, "s3_prefix": PREFIX, "s3_endpoint_url": self.server.endpoint_url,
                "s3_region": REGION, "s3_access_key_id": ACCESS_KEY, "s3_secret_access_key": SECRET_KEY}


@pytest.fixture
def bucket(s3_server) -> Bucket:
    client = s3_server.client()
    name = f"registry-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return Bucket(s3_server, name, client)


def fetch(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=30, allow_redirects=False, **kwargs)
