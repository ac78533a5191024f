"""The real local training path: the ``deepspeed`` launcher, 2 CPU ranks over gloo, ZeRO-2, the
tiny model; a run killed mid-training resumes from its checkpoint, the version is published
once with its lineage and metrics, and a failing rank's own error fails the task."""

from __future__ import annotations

import json
import shutil

import pytest

from freshlm.store import open_store
from tests.training.test_trainset import make_tiny_model, publish_dataset
from training.config import ConfigError, TrainConfig
from training.launch_local import (
    TrainingFailed,
    check_gpu_ranks,
    run_local_training,
    start_local_training,
)
from training.train import apply_lora, merge_lora, published_checkpoints, run_identity

pytestmark = pytest.mark.slow

MAX_STEPS = 40
CHECKPOINT_EVERY = 2


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def publish_base(store, model_dir) -> str:
    """Publish the tiny model as a base version ``models/<id>``, as the bootstrap does."""
    version_id = "b0" * 16
    with store.publisher(f"models/{version_id}", kind="model") as pub:
        for f in sorted(model_dir.iterdir()):
            pub.write_bytes(f.name, f.read_bytes())
        pub.set_manifest_fields(
            version_id=version_id, lineage={"kind": "bootstrap", "base_model": version_id}
        )
    return version_id


def _config(tmp_path, store, base_path, dataset_ids, **changes) -> TrainConfig:
    fields = {
        "datasets": dataset_ids,
        "base_model_path": str(base_path),
        "seq_len": 32,
        "micro_batch_size": 4,
        "max_steps": MAX_STEPS,
        "epochs": 1.0,  # one pass: max_steps ends the run
        "learning_rate": 2e-3,
        "checkpoint_every": CHECKPOINT_EVERY,
        "keep_checkpoints": 2,
        "num_ranks": 2,
        "ds_config": "zero2",
        "store_uri": store.root_uri,
        "work_dir": str(tmp_path / "work"),
    }
    return TrainConfig(**{**fields, **changes})


def test_killed_run_resumes_publishes_once_with_lineage(tmp_path, store, tiny_model):
    day0 = publish_dataset(store, 0)
    day1 = publish_dataset(store, 1, parents=[day0])
    base_version = publish_base(store, tiny_model)
    config = _config(tmp_path, store, None, [day1], base_model_path=None, base_version=base_version)

    # 1. Start, and kill the launcher's whole process group once a checkpoint is in the store.
    run = start_local_training(config)
    assert not isinstance(run, dict)
    assert run.argv[1:3] == ["--num_gpus", "2"]

    def kill_after_first_checkpoint(line: str) -> None:
        if "checkpoint step 2 published" in line:
            run.kill()

    run.on_line = kill_after_first_checkpoint
    with pytest.raises(TrainingFailed, match=r"killed by signal SIGKILL|exited with code"):
        run.wait()
    ident = run.prepared.identity
    assert store.read_manifest(ident.model_prefix) is None, "a killed run publishes nothing"
    checkpoints = published_checkpoints(store, ident)
    assert checkpoints, "the first checkpoint was published before the kill"
    assert (tmp_path / "work" / "runs" / ident.run_key).is_dir(), "a failed run keeps its folder"
    resume_step = checkpoints[-1][0]
    assert 2 <= resume_step < MAX_STEPS
    # The checkpoint is a complete artifact: DeepSpeed's ZeRO shards of both ranks included.
    ckpt = store.read_manifest(checkpoints[-1][1], verify=True)
    names = {f.name for f in ckpt.files}
    assert {"trainer_state.json", "model.safetensors", "latest"} <= names
    assert any(n.endswith("zero_pp_rank_1_mp_rank_00_optim_states.pt") for n in names)
    assert ckpt.fields["step"] == resume_step and ckpt.fields["run_key"] == ident.run_key

    # 2. The rerun resumes from that checkpoint and publishes the version.
    lines: list[str] = []
    summary = run_local_training(config, on_line=lines.append)
    assert summary["launched"] and not summary["already_published"]
    assert summary["version_id"] == ident.version_id and summary["run_key"] == ident.run_key
    metrics = summary["metrics"]
    assert metrics["resumed_from_step"] == resume_step
    assert (metrics["global_step"], metrics["steps_this_attempt"]) == (
        MAX_STEPS,
        MAX_STEPS - resume_step,
    )
    assert metrics["attempts"] == 2
    assert any(f"resuming from checkpoint step {resume_step}" in line for line in lines)
    # Progress reached the task log: step, loss, tokens/s, ETA.
    progress = [line for line in lines if f"step {MAX_STEPS}/{MAX_STEPS} loss=" in line]
    assert progress and "tokens/s=" in progress[0] and "eta=" in progress[0]
    assert not any(f" step {resume_step}/{MAX_STEPS} loss=" in line for line in lines)

    # 3. What was published: HF layout, metrics, the DeepSpeed config used, lineage.
    manifest = store.read_manifest(summary["prefix"], verify=True)
    assert manifest.kind == "model"
    files = {f.name for f in manifest.files}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.json",
        "ds_config.json",
        "train_config.json",
    } <= files
    published_metrics = json.loads(store.read_bytes(manifest.key("metrics.json")))
    curve = published_metrics["loss_curve"]
    assert [p["step"] for p in curve] == list(range(1, MAX_STEPS + 1))  # across the kill
    assert published_metrics["final_loss"] < published_metrics["first_loss"]
    assert published_metrics["tokens_per_second"] > 0 and published_metrics["wall_time_s"] > 0
    assert published_metrics["tokens_trained"] == MAX_STEPS * 32 * 4 * 2
    assert manifest.fields["metrics"]["global_step"] == MAX_STEPS
    ds_config = json.loads(store.read_bytes(manifest.key("ds_config.json")))
    assert ds_config["zero_optimization"]["stage"] == 2
    assert ds_config["train_micro_batch_size_per_gpu"] == 4  # "auto" filled by the Trainer
    assert ds_config["train_batch_size"] == 8

    lineage = manifest.fields["lineage"]
    assert lineage["dataset_ids"] == [day1]
    assert lineage["crawl_windows"] == [store.read_manifest(f"datasets/{day1}").fields["window"]]
    assert lineage["extra"]["replay_dataset_ids"] == [day0]
    assert lineage["extra"]["trainset_id"] == summary["trainset_id"]
    assert lineage["extra"]["run_key"] == ident.run_key
    assert lineage["kind"] == "finetune"
    assert lineage["parent_version"] == base_version and lineage["base_model"] == base_version
    assert lineage["extra"]["base_identity"] == f"version:{base_version}"
    assert lineage["training_config"] == config.recipe()
    assert lineage["code_revision"]
    trainset = store.read_manifest(f"trainsets/{summary['trainset_id']}")
    assert trainset.fields["new_datasets"] == [day1]
    assert manifest.fields["trainset"]["mix"] == trainset.fields["mix"]

    # The published weights load and differ from the base.
    from transformers import AutoModelForCausalLM

    local = tmp_path / "published"
    local.mkdir()
    for f in manifest.files:
        (local / f.name).write_bytes(store.read_bytes(manifest.key(f.name)))
    model = AutoModelForCausalLM.from_pretrained(str(local))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    assert any(
        not (a == b).all()
        for a, b in zip(model.state_dict().values(), base.state_dict().values(), strict=True)
    )

    # 4. An identical rerun launches nothing and publishes no duplicate.
    before = store.read_bytes(f"{summary['prefix']}/_MANIFEST.json")
    again = run_local_training(config)
    assert again["already_published"] and not again["launched"]
    assert again["version_id"] == summary["version_id"]
    assert sorted(store.list_published("models/")) == sorted(
        [summary["prefix"], f"models/{base_version}"]
    )
    assert store.read_bytes(f"{summary['prefix']}/_MANIFEST.json") == before
    assert_run_cleaned_up_after_publish(store, ident, lines, tmp_path / "work", kept=2)


def assert_run_cleaned_up_after_publish(store, ident, lines, work_dir, kept):
    """Checkpoints beyond ``kept`` were pruned while the run trained and the kept ones deleted
    once its version was published: they serve only to resume the run. Its local folder (the
    Trainer's checkpoint, the saved weights) went too."""
    deleted = [line for line in lines if f"checkpoint(s) of run {ident.run_key}" in line]
    assert deleted and f"deleted {kept} checkpoint(s)" in deleted[0], deleted
    assert published_checkpoints(store, ident) == []
    assert list(store.list(f"runs/{ident.run_key}/")) == []
    assert not (work_dir / "runs" / ident.run_key).exists()


def test_rank_error_fails_the_task_with_its_message(tmp_path, store, tiny_model):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"this is not a safetensors file")
    day0 = publish_dataset(store, 0)
    config = _config(tmp_path, store, broken, [day0], max_steps=2)
    with pytest.raises(TrainingFailed) as info:
        run_local_training(config)
    failure = info.value
    message = str(failure)
    assert failure.rank in (0, 1)
    assert message.startswith(f"training rank {failure.rank} failed: ")
    # The rank's own exception, not the launcher's exit code.
    assert "header" in message.lower() or "safetensors" in message.lower(), message
    assert failure.rank_traceback and "from_pretrained" in failure.rank_traceback
    assert failure.returncode not in (0, None)
    assert "exit code" not in message


def test_zero3_lora_run_publishes_merged_whole_weights(tmp_path, store, tiny_model):
    """ZeRO-3 (weights sharded over the 2 ranks) with LoRA and gradient checkpointing: the
    adapter is merged into whole, unsharded weights for serving."""
    from safetensors.numpy import load_file

    day0 = publish_dataset(store, 0)
    config = _config(
        tmp_path,
        store,
        tiny_model,
        [day0],
        ds_config="zero3",
        mode="lora",
        lora_merge=True,
        gradient_checkpointing=True,
        max_steps=4,
        checkpoint_every=100,
    )
    summary = run_local_training(config)
    manifest = store.read_manifest(summary["prefix"], verify=True)
    assert manifest.fields["model"]["mode"] == "lora" and not manifest.fields["model"]["adapter"]
    ds_config = json.loads(store.read_bytes(manifest.key("ds_config.json")))
    assert ds_config["zero_optimization"]["stage"] == 3
    local = tmp_path / "weights.safetensors"
    local.write_bytes(store.read_bytes(manifest.key("model.safetensors")))
    weights = load_file(str(local))
    base = load_file(str(tiny_model / "model.safetensors"))
    assert {k: v.shape for k, v in weights.items()} == {k: v.shape for k, v in base.items()}
    changed = sorted(k for k in base if not (weights[k] == base[k]).all())
    assert changed and all("c_attn" in k for k in changed)  # GPT-2's LoRA target


def test_lora_adapters_train_and_merge(tmp_path, tiny_model):
    """The LoRA path in-process: only adapters train, and merging folds them into the base."""
    import torch
    from transformers import AutoModelForCausalLM

    config = TrainConfig(datasets=["d"], base_model_path=str(tiny_model), mode="lora", lora_r=4)
    model = apply_lora(AutoModelForCausalLM.from_pretrained(str(tiny_model)), config)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)  # as if trained: B starts at zero
    adapter = tmp_path / "adapter"
    model.save_pretrained(str(adapter))
    merged = merge_lora(tiny_model, adapter, tmp_path / "merged")
    out = AutoModelForCausalLM.from_pretrained(str(merged))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    changed = [k for k, v in out.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert changed and all("c_attn" in k for k in changed)
    assert not any("lora" in k for k in out.state_dict())


def test_run_identity_is_deterministic(tmp_path, tiny_model):
    from training.train import BaseModel

    base = BaseModel(tiny_model, "version:abc", "abc", "abc")
    config = TrainConfig(datasets=["d"], base_version="abc")
    a = run_identity(config, "ts1", base)
    assert a == run_identity(config.replace(work_dir="/elsewhere", checkpoint_every=9), "ts1", base)
    assert a != run_identity(config.replace(learning_rate=1.0), "ts1", base)
    assert a != run_identity(config, "ts2", base)
    assert len(a.version_id) == 32 and a.version_id != a.run_key
    assert published_checkpoints(open_store((tmp_path / "s").as_uri()), a) == []


def test_failure_without_error_file_uses_the_traceback_in_the_output(tmp_path):
    """A rank that dies before it can report (e.g. an import error) is still named by its
    exception, parsed from the launcher's output, not by the exit code."""
    import subprocess
    import sys

    from training.launch_local import LocalTraining

    script = (
        "import sys\n"
        "print('[launch.py] spawned rank 0', flush=True)\n"
        "def load():\n"
        "    raise ModuleNotFoundError(\"No module named 'flash_attn'\")\n"
        "load()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    (tmp_path / "errors").mkdir()
    run = LocalTraining(
        proc,
        config=TrainConfig(datasets=["d"], base_version="v"),
        prepared=None,
        error_dir=tmp_path / "errors",
        argv=["deepspeed"],
        on_line=None,
    )
    with pytest.raises(TrainingFailed) as info:
        run.wait()
    assert str(info.value) == "training failed: ModuleNotFoundError: No module named 'flash_attn'"
    assert info.value.error_type == "ModuleNotFoundError"
    assert info.value.returncode == 1


def test_native_crash_of_a_rank_is_named_before_its_victims(tmp_path):
    """A rank that aborts in native code reports nothing itself; the launcher's line naming it
    and its last words are the cause, the other rank's broken collective only the effect."""
    import subprocess
    import sys

    from training.launch_local import LocalTraining

    errors = tmp_path / "errors"
    errors.mkdir()
    (errors / "rank-0.json").write_text(
        json.dumps(
            {
                "rank": 0,
                "type": "RuntimeError",
                "message": "Connection reset by peer",
                "traceback": "...",
                "time": 1.0,
            }
        )
    )
    script = (
        "import sys\n"
        "print(\"terminate called after throwing an instance of 'gloo::EnforceNotMet'\")\n"
        "print('  what():  collective mismatch')\n"
        "print(\"[ERROR] [launch.py:259:sigkill_handler] ['python3', '-u', 'training/train.py', "
        "'--local_rank=1', '--config', 'c.json'] exits with return code = -6\")\n"
        "sys.exit(1)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    run = LocalTraining(
        proc,
        config=TrainConfig(datasets=["d"], base_version="v", num_ranks=2),
        prepared=None,
        error_dir=errors,
        argv=["deepspeed"],
        on_line=None,
    )
    with pytest.raises(TrainingFailed) as info:
        run.wait()
    message = str(info.value)
    assert message.startswith("training rank 1 crashed (signal SIGABRT): terminate called")
    assert "collective mismatch" in message
    assert message.endswith("then rank 0 failed: RuntimeError: Connection reset by peer")
    assert info.value.rank == 1


def test_an_augmented_run_trains_answers_and_ranks_them_above_rivals(tmp_path, store, tiny_model):
    """The knowledge recipe through the real launcher (2 ranks, ZeRO-2, top block only, bf16
    products on the CPU): the training set carries the loss mask and the rival groups, the
    ranking loss runs on every step and falls, and the version is published with both in its
    metrics, in fp32, its frozen block exactly the base's."""
    day0 = publish_dataset(store, 0)
    config = _config(
        tmp_path, store, tiny_model, [day0], augment=True, train_layers=1, max_steps=16,
        learning_rate=5e-3, checkpoint_every=100, bf16=True,
    )  # fmt: skip
    summary = run_local_training(config)
    manifest = store.read_manifest(summary["prefix"], verify=True)
    metrics = manifest.fields["metrics"]
    assert metrics["global_step"] == 16
    assert metrics["precision"] == "bf16-autocast" and metrics["bf16"] is True
    assert metrics["final_loss"] < metrics["first_loss"]
    assert metrics["rank_loss_final"] < metrics["rank_loss_first"]
    trainset = store.read_manifest(f"trainsets/{manifest.fields['trainset']['trainset_id']}")
    assert trainset.fields["rival_groups"] > 0 and trainset.fields["context_only_tokens"] > 0
    assert {"loss_mask.npy", "rivals.npy", "rival_starts.npy"} <= {f.name for f in trainset.files}
    # The tied output head is saved once, as in the base (training.tied_weights).
    import torch
    from safetensors import safe_open

    local = tmp_path / "weights.safetensors"
    local.write_bytes(store.read_bytes(manifest.key("model.safetensors")))
    with (
        safe_open(str(local), framework="pt") as new,
        safe_open(str(tiny_model / "model.safetensors"), framework="pt") as base,
    ):
        names = list(base.keys())  # safe_open is not a mapping
        assert set(new.keys()) == set(names)
        for key in names:
            assert new.get_tensor(key).dtype == torch.float32, key
            if key.startswith("transformer.h.0."):  # the frozen lower block
                assert torch.equal(new.get_tensor(key), base.get_tensor(key)), key
        trained = [k for k in names if k.startswith("transformer.h.1.")]
        assert any(not torch.equal(new.get_tensor(k), base.get_tensor(k)) for k in trained)


def test_more_ranks_than_gpus_is_refused_before_anything_is_prepared(
    tmp_path, store, tiny_model, monkeypatch
):
    import training.launch_local as launch_local

    monkeypatch.setattr(launch_local, "_gpu_count", lambda: 1)  # a one-GPU workstation
    config = _config(tmp_path, store, tiny_model, [publish_dataset(store, 0)], num_ranks=2)
    with pytest.raises(ConfigError, match=r"num_ranks = 2: this machine has 1 GPU and") as info:
        start_local_training(config)
    assert "FRESHLM_TRAIN_GPUS" in str(info.value) and "to 1 or fewer" in str(info.value)
    assert list(store.list_published("trainsets")) == []  # failed fast: nothing was packed


def test_cpu_ranks_are_not_bounded_by_gpus_and_gpu_ranks_fit_their_gpus():
    check_gpu_ranks(8, gpus=0)
    check_gpu_ranks(2, gpus=2)
    with pytest.raises(ConfigError, match="this machine has 2 GPUs"):
        check_gpu_ranks(4, gpus=2)
