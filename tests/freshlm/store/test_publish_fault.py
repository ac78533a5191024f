"""A crash in the middle of a publish leaves nothing published, and a retry completes it.

S3: a real SeaweedFS is SIGKILLed while the publish uploads (after a whole data file, and in the
middle of a multipart upload). Local: a publishing process is SIGKILLed while it writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshlm.settings import Settings
from freshlm.store import StoreError, open_store
from tests.freshlm.store.conftest import s3_settings
from tests.support.s3_server import S3Server

MB = 1024 * 1024
PREFIX = "models/v7"


def weights(megabytes: int) -> Iterator[bytes]:
    for i in range(megabytes):
        yield bytes([i % 251]) * MB


def publish_model(store, *, on_first_file_done=None) -> None:
    """A model-version artifact: config, 12 MB of weights (multipart on S3), then the manifest."""
    with store.publisher(PREFIX, kind="model", created_by={"dag_id": "train"}) as pub:
        pub.write_bytes("config.json", b'{"layers": 2}')
        if on_first_file_done:
            on_first_file_done()
        with pub.open_write("model.safetensors") as writer:
            for block in weights(12):
                writer.write(block)
        pub.set_manifest_fields(base_model="tiny")


def assert_published_completely(store) -> None:
    manifest = store.read_manifest(PREFIX, verify=True)
    assert manifest is not None
    assert [(f.name, f.size) for f in manifest.files] == [
        ("config.json", 13),
        ("model.safetensors", 12 * MB),
    ]
    assert list(store.list_published()) == [PREFIX]


@pytest.mark.s3
@pytest.mark.parametrize("moment", ["after-first-file", "mid-multipart-upload"])
def test_s3_server_killed_during_publish(
    moment: str, killable_s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = killable_s3_server
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    bucket = server.create_bucket()
    store = open_store(settings=s3_settings(server, bucket))  # 2 attempts, 5 MB parts

    kill_now = server.kill
    if moment == "mid-multipart-upload":
        parts_done = []

        def after_part(**_: object) -> None:
            parts_done.append(1)
            if len(parts_done) == 1:  # one 5 MB part is stored, the other two are not
                server.kill()

        store.client.meta.events.register("after-call.s3.UploadPart", after_part)
        kill_now = None

    with pytest.raises(StoreError) as excinfo:
        publish_model(store, on_first_file_done=kill_now)
    assert excinfo.value.uri == store.uri_for(f"{PREFIX}/model.safetensors")
    assert f"S3 endpoint {server.endpoint_url}" in excinfo.value.cause

    server.restart()
    assert store.read_manifest(PREFIX) is None
    assert list(store.list_published()) == []
    # The weights never became an object: a killed multipart upload is invisible.
    assert not store.exists(f"{PREFIX}/model.safetensors")

    publish_model(store)
    assert_published_completely(store)


def test_local_exception_mid_write_leaves_no_half_file(tmp_path: Path) -> None:
    store = open_store(settings=Settings.from_env({"FRESHLM_HOME": str(tmp_path)}))

    def crash() -> None:
        raise OSError("disk controller reset")

    with pytest.raises(OSError):
        publish_model(store, on_first_file_done=crash)
    assert store.read_manifest(PREFIX) is None
    assert list(store.list(PREFIX)) == [f"{PREFIX}/config.json"]  # unreferenced, unpublished

    publish_model(store)
    assert_published_completely(store)


def test_local_process_killed_mid_write_publishes_nothing(tmp_path: Path) -> None:
    root = (tmp_path / "store").as_uri()
    # The child publishes, and blocks for ever half-way through the weights.
    child = textwrap.dedent(
        f"""
        import sys, time
        from freshlm.settings import Settings
        from freshlm.store import open_store
        store = open_store({root!r}, settings=Settings.from_env({{}}))
        with store.publisher({PREFIX!r}, kind="model") as pub:
            pub.write_bytes("config.json", b'{{"layers": 2}}')
            with pub.open_write("model.safetensors") as writer:
                writer.write(b"w" * {6 * MB})
                writer.flush()
                print("HALF-WRITTEN", flush=True)
                time.sleep(600)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        assert process.stdout.readline() == b"HALF-WRITTEN\n"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    store = open_store(root, settings=Settings.from_env({}))
    assert store.read_manifest(PREFIX) is None
    assert not store.exists(f"{PREFIX}/model.safetensors")
    assert list(store.list()) == [f"{PREFIX}/config.json"]
    # The half-written bytes exist only as a hidden temporary file, under no object's name.
    leftovers = sorted(p.name for p in (tmp_path / "store" / PREFIX).iterdir())
    assert len(leftovers) == 2 and leftovers[1] == "config.json"
    assert leftovers[0].startswith(".freshlm-tmp.")

    publish_model(store)
    assert_published_completely(store)
