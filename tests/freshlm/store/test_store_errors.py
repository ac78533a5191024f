"""Failures surface as one StoreError naming the URI and a cause a person can act on."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from freshlm.settings import Settings
from freshlm.store import Store, StoreError, open_store
from freshlm.store.s3 import S3Store

OPERATIONS: dict[str, Callable[[Store], object]] = {
    "read": lambda s: s.read_bytes("shards/a.jsonl"),
    "write": lambda s: s.write_bytes("shards/a.jsonl", b"{}\n"),
    "stream-write": lambda s: s.write_jsonl("shards/a.jsonl.gz", [{"a": 1}]),
    "exists": lambda s: s.exists("shards/a.jsonl"),
    "list": lambda s: list(s.list("shards/")),
    "manifest": lambda s: s.read_manifest("shards"),
}


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_store(endpoint: str, bucket: str = "freshlm-data", attempts: int = 2) -> Store:
    return open_store(
        settings=Settings.from_env(
            {
                "FRESHLM_STORE_URI": f"s3://{bucket}/root",
                "FRESHLM_S3_ENDPOINT_URL": endpoint,
                "FRESHLM_S3_MAX_ATTEMPTS": str(attempts),
            }
        )
    )


def count_attempts(store: S3Store) -> list[str]:
    """Record every HTTP attempt the client sends (retries included)."""
    attempts: list[str] = []
    store.client.meta.events.register(
        "before-send.s3", lambda request, **_: attempts.append(request.method)
    )
    return attempts


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value-1234")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.s3
@pytest.mark.parametrize("operation", OPERATIONS)
def test_missing_bucket(operation: str, s3_server, s3_credentials) -> None:
    store = s3_store(s3_server.endpoint_url, bucket="no-such-bucket-here")
    with pytest.raises(StoreError) as excinfo:
        OPERATIONS[operation](store)
    assert excinfo.value.uri.startswith("s3://no-such-bucket-here/root/shards")
    assert str(excinfo.value).endswith(": bucket does not exist (NoSuchBucket)")


@pytest.mark.parametrize("operation", OPERATIONS)
def test_endpoint_down(operation: str, fake_credentials) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = s3_store(endpoint)
    with pytest.raises(StoreError) as excinfo:
        OPERATIONS[operation](store)
    message = str(excinfo.value)
    assert message.startswith("s3://freshlm-data/root/shards")
    assert f"cannot reach S3 endpoint {endpoint} (connection refused)" in message
    assert "very-secret-value-1234" not in message and "AKIAFAKE" not in message


@pytest.mark.parametrize("operation", OPERATIONS)
def test_missing_credentials(operation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup
    store = s3_store(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(StoreError) as excinfo:
        OPERATIONS[operation](store)
    assert str(excinfo.value).startswith("s3://freshlm-data/root/shards")
    assert "no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in str(
        excinfo.value
    )


def test_connection_errors_are_retried_up_to_max_attempts(fake_credentials) -> None:
    store = s3_store(f"http://127.0.0.1:{closed_port()}", attempts=3)
    assert store.client.meta.config.retries == {"total_max_attempts": 3, "mode": "standard"}
    attempts = count_attempts(store)
    with pytest.raises(StoreError, match="connection refused"):
        store.read_bytes("shards/a.jsonl")
    assert len(attempts) == 3


class FlakyS3(http.server.BaseHTTPRequestHandler):
    """Answers 503 SlowDown to the first ``failures`` requests, then serves one object."""

    failures = 0
    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        if type(self).seen <= type(self).failures:
            body = (
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                b"<Message>Please reduce your request rate.</Message></Error>"
            )
            self.send_response(503)
        else:
            body = b"payload"
            self.send_response(200)
            self.send_header("ETag", '"abc"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_s3() -> Iterator[tuple[str, type[FlakyS3]]]:
    handler = type("Flaky", (FlakyS3,), {"failures": 0, "seen": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_transient_503_is_retried_with_backoff_and_succeeds(flaky_s3, fake_credentials) -> None:
    endpoint, handler = flaky_s3
    handler.failures = 2
    store = s3_store(endpoint, attempts=3)
    assert store.read_bytes("shards/a.jsonl") == b"payload"
    assert handler.seen == 3


def test_persistent_503_gives_up_with_the_code_and_attempts(flaky_s3, fake_credentials) -> None:
    endpoint, handler = flaky_s3
    handler.failures = 100
    store = s3_store(endpoint, attempts=3)
    with pytest.raises(StoreError) as excinfo:
        store.read_bytes("shards/a.jsonl")
    assert handler.seen == 3
    assert str(excinfo.value) == (
        "s3://freshlm-data/root/shards/a.jsonl: S3 request failed after 3 attempts: "
        "Please reduce your request rate. (HTTP 503, SlowDown)"
    )


def test_unsupported_uri() -> None:
    with pytest.raises(StoreError, match=r"gs://bucket/x: unsupported store URI"):
        open_store("gs://bucket/x", settings=Settings.from_env({}))


def test_local_root_that_is_a_file(tmp_path) -> None:
    (tmp_path / "blocker").write_text("not a folder")
    store = open_store((tmp_path / "blocker").as_uri(), settings=Settings.from_env({}))
    with pytest.raises(StoreError) as excinfo:
        store.write_bytes("a/b", b"x")
    assert excinfo.value.uri == f"{(tmp_path / 'blocker').as_uri()}/a/b"
    assert "cannot create the file" in excinfo.value.cause
