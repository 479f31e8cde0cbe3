"""A real S3 server for the storage tests: moto's ThreadedMotoServer on a free loopback port,
one per test session, reached through the standard AWS settings (``AWS_ENDPOINT_URL``, dummy
credentials, a region) so the code under test and every subprocess it starts talk to it exactly
as they would to a bucket in the cloud. Nothing is mocked inside the process under test."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
       "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of a running moto server; AWS_* set for this process and its children."""
    pytest.importorskip("s3fs", reason="the [s3] extra (s3fs) is not installed")
    server_mod = pytest.importorskip("moto.server", reason="moto[server] (a dev dependency) is not installed")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in [*AWS, "AWS_ENDPOINT_URL"]}
    os.environ.update(AWS, AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture
def bucket(s3_server) -> str:
    """A fresh, empty bucket name on the server."""
    import boto3

    name = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name


def s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
