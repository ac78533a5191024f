"""Training faults with real processes on loopback: a hung rank, and the S3 store restarted.

Each runs the real local backend (the ``deepspeed`` launcher, 2 CPU ranks over gloo, ZeRO-2, the
tiny GPT-2 the training tests use) and checks what an operator would see: the run ends with an
error that says what happened, no process of it is left, and the store holds one model version
whose training went through every step once.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from freshlm.settings import get_settings
from freshlm.store import open_store
from tests.faults.test_crawl_faults import processes_with
from tests.support.s3_server import S3Server
from tests.training.test_train_local import _config
from tests.training.test_trainset import make_tiny_model, publish_dataset
from training.config import TrainConfig
from training.launch_local import (
    LocalTraining,
    TrainingFailed,
    run_local_training,
    start_local_training,
)
from training.train import published_checkpoints

pytestmark = pytest.mark.slow

# The stall timeout the hung-rank test runs with: longer than any silence of a healthy run
# here (rank start-up on a busy 2-core machine), short enough to keep the test quick.
STALL_TIMEOUT_S = 30
# How long the test waits beyond the timeout before calling the run hung for good.
GRACE_S = 120


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings re-read from the environment the test sets, and again after it."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def train_config(tmp_path: Path, store, model: Path, datasets: list[str], **changes) -> TrainConfig:
    """The real-launcher tests' config (2 ranks, ZeRO-2, a checkpoint every 2 steps), 20 steps."""
    return _config(tmp_path, store, model, datasets, **{"max_steps": 20, **changes})


def processes_of(run: LocalTraining) -> list[int]:
    """Live (not zombie) pids of the run: the launcher and every rank name its config file."""
    return processes_with(str(run.argv[-1]))


def rank_pid(run: LocalTraining, local_rank: int) -> int:
    marker = f"--local_rank={local_rank}".encode()
    for pid in processes_of(run):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise AssertionError(f"rank {local_rank} of the run is not running")


def assert_no_process_left(run: LocalTraining, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while processes_of(run) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_of(run)
    assert not left, f"processes of the run still alive: {left}"


def wait_bounded(run: LocalTraining, limit_s: float) -> BaseException | dict:
    """``run.wait()`` in a thread, for at most ``limit_s``: a run that never ends is killed (its
    whole process group) and fails the test instead of hanging it."""
    outcome: list[BaseException | dict] = []

    def target() -> None:
        try:
            outcome.append(run.wait())
        except BaseException as exc:  # the outcome is what the test checks
            outcome.append(exc)

    waiter = threading.Thread(target=target, daemon=True)
    waiter.start()
    waiter.join(limit_s)
    if waiter.is_alive():
        run.kill()
        waiter.join(30)
        pytest.fail(f"the training run was still running {limit_s:.0f}s later: nothing ended it")
    return outcome[0]


def on_first(match: Callable[[str], bool], action: Callable[[], None]) -> Callable[[str], None]:
    """An ``on_line`` callback that runs ``action`` once, at the first line ``match`` accepts."""
    done: list[bool] = []

    def on_line(line: str) -> None:
        if not done and match(line):
            done.append(True)
            action()

    return on_line


def test_a_hung_rank_is_killed_with_the_launcher_and_every_rank(
    tmp_path, tiny_model, monkeypatch, fresh_settings
):
    monkeypatch.setenv("FRESHLM_TRAIN_STALL_TIMEOUT_S", str(STALL_TIMEOUT_S))
    store = open_store((tmp_path / "store").as_uri())
    day0 = publish_dataset(store, 0)
    # More steps than the test lets it take: the run can only end by the timeout.
    config = train_config(tmp_path, store, tiny_model, [day0], max_steps=100_000)

    run = start_local_training(config)
    assert isinstance(run, LocalTraining)
    stopped: list[int] = []

    def stop_rank_1() -> None:
        pid = rank_pid(run, 1)
        os.kill(pid, signal.SIGSTOP)  # frozen for good: rank 0 waits in its next collective
        stopped.append(pid)

    stop_at_first_step = on_first(lambda line: " loss=" in line, stop_rank_1)
    heard: list[float] = []  # when each line came, to show the silences if the test fails

    def on_line(line: str) -> None:
        heard.append(time.monotonic())
        stop_at_first_step(line)

    run.on_line = on_line
    started = time.monotonic()
    outcome = wait_bounded(run, STALL_TIMEOUT_S + GRACE_S)
    silences = [round(b - a, 1) for a, b in zip([started, *heard], heard, strict=False)]
    assert stopped, (
        f"the run ended before any step was logged (longest silence {max(silences, default=0)}s"
        f" of a {STALL_TIMEOUT_S}s timeout): {outcome!r}"
    )

    assert isinstance(outcome, TrainingFailed), f"expected a timeout, got {outcome!r}"
    message = str(outcome)
    assert message.startswith("training made no progress for "), message
    assert "FRESHLM_TRAIN_STALL_TIMEOUT_S" in message and "a rank is hung" in message
    assert outcome.returncode == -signal.SIGKILL
    assert run.stalled_s is not None and run.stalled_s >= STALL_TIMEOUT_S
    # The launcher, launch.py and both ranks (the stopped one included) are gone.
    assert_no_process_left(run)
    assert not any(
        p.name.endswith(f"_{run.master_port}_{r}")
        for p in Path("/dev/shm").glob("deepspeed_allreduce_buffer_*")
        for r in range(2)
    ), "the run's shared-memory buffers were left in /dev/shm"
    assert store.read_manifest(run.prepared.identity.model_prefix) is None


@pytest.mark.s3
def test_s3_restarted_mid_training_resumes_and_publishes_one_version(
    tmp_path, tiny_model, killable_s3_server: S3Server, monkeypatch, fresh_settings
):
    server = killable_s3_server
    bucket = server.create_bucket("train")
    for name, value in {
        **server.env,
        "FRESHLM_STORE_URI": f"s3://{bucket}/freshlm",
        "FRESHLM_S3_ENDPOINT_URL": server.endpoint_url,
    }.items():
        monkeypatch.setenv(name, value)  # the ranks inherit the environment
    store = open_store()
    day0 = publish_dataset(store, 0)
    day1 = publish_dataset(store, 1, parents=[day0])
    config = train_config(tmp_path, store, tiny_model, [day1], max_steps=8)

    # 1. The server goes away once the first checkpoint is in it (SIGTERM, which weed ignores
    #    for a while, then SIGKILL); the run fails at its next store call.
    run = start_local_training(config)
    assert isinstance(run, LocalTraining)
    ident = run.prepared.identity
    run.on_line = on_first(lambda line: "checkpoint step 2 published" in line, server.stop)
    outcome = wait_bounded(run, 300)
    assert isinstance(outcome, TrainingFailed), f"the run survived without its store: {outcome!r}"
    # The cause, not its victim: rank 0's failed store call, not rank 1's broken collective.
    assert outcome.rank == 0 and outcome.error_type == "StoreError", (
        f"{outcome}\n{outcome.output_tail[-6000:]}"
    )
    assert f"s3://{bucket}/freshlm/runs/{ident.run_key}/checkpoints/" in str(outcome)
    assert_no_process_left(run)

    # 2. The server comes back with its data; the rerun resumes from the newest checkpoint.
    server.start()
    assert store.read_manifest(ident.model_prefix) is None, "a failed run published a version"
    checkpoints = published_checkpoints(store, ident)
    assert checkpoints, "the checkpoint published before the outage was lost"
    for _, prefix in checkpoints:
        assert store.read_manifest(prefix, verify=True) is not None, f"{prefix} is damaged"
    resume_step = checkpoints[-1][0]
    assert 2 <= resume_step < config.max_steps

    rerun: list[str] = []
    summary = run_local_training(config, on_line=rerun.append)
    assert summary["launched"] and summary["version_id"] == ident.version_id
    metrics = summary["metrics"]
    assert metrics["resumed_from_step"] == resume_step
    assert metrics["attempts"] == 2
    assert metrics["global_step"] == config.max_steps
    assert metrics["steps_this_attempt"] == config.max_steps - resume_step
    assert any(f"resuming from checkpoint step {resume_step}" in line for line in rerun)

    # 3. One version, not two; every step trained once across the outage; no stray checkpoint.
    assert sorted(store.list_published("models/")) == [ident.model_prefix]
    manifest = store.read_manifest(ident.model_prefix, verify=True)
    curve = json.loads(store.read_bytes(manifest.key("metrics.json")))["loss_curve"]
    assert [p["step"] for p in curve] == list(range(1, config.max_steps + 1))
    assert published_checkpoints(store, ident) == [], (
        "the published version's run kept its checkpoints"
    )
