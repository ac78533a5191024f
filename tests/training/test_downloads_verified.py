"""What the training job reads from the store is checked against the manifest's sha256 before it
is used: a checkpoint before DeepSpeed resumes from it (``torch.load`` runs code from a pickle),
the base model, the packed training set and the datasets it is built from. A file whose bytes
differ — same size, other content — fails with an error naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshlm.store import Store, StoreError, open_store
from tests.training.test_trainset import publish_dataset, tiny_model, tiny_tokenizer  # noqa: F401
from training.config import TrainConfig
from training.train import (
    CheckpointDamaged,
    RunIdentity,
    _Rank,
    _resume_point,
    download_artifact,
    resolve_base,
)
from training.trainset import (
    INPUT_IDS_FILE,
    TRAINSET_KIND,
    build_training_set,
    load_input_ids,
    read_training_set,
)

IDENT = RunIdentity(run_key="r" * 32, version_id="v" * 32)
ONE_RANK = _Rank(rank=0, local_rank=0, world=1)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store((tmp_path / "store").as_uri())


def _tamper(store: Store, prefix: str, name: str) -> str:
    """Replace the stored bytes of ``name`` with others of the same size; returns its URI."""
    manifest = store.read_manifest(prefix)
    key = manifest.key(name)
    data = store.read_bytes(key)
    store.write_bytes(key, bytes(b ^ 0x01 for b in data))
    return store.uri_for(key)


def _publish_checkpoint(store: Store, step: int) -> str:
    prefix = f"{IDENT.checkpoints_prefix}/step-{step}"
    with store.publisher(prefix, kind="checkpoint") as pub:
        pub.write_bytes("global_step2/mp_rank_00_model_states.pt", b"pickled weights " * 64)
        pub.write_bytes("trainer_state.json", b'{"global_step": 2}')
        pub.write_bytes("freshlm_progress.json", b'{"steps": 2}')
    return prefix


def test_a_checkpoint_changed_in_the_store_is_never_handed_to_deepspeed(store, tmp_path):
    prefix = _publish_checkpoint(store, 2)
    uri = _tamper(store, prefix, "global_step2/mp_rank_00_model_states.pt")
    with pytest.raises(CheckpointDamaged) as err:
        _resume_point(store, IDENT, tmp_path / "run", ONE_RANK)
    message = str(err.value)
    assert uri in message and "does not match the manifest" in message
    assert "step 2" in message and "not resumed from" in message


def test_an_intact_checkpoint_is_resumed_from(store, tmp_path):
    _publish_checkpoint(store, 2)
    resume = _resume_point(store, IDENT, tmp_path / "run", ONE_RANK)
    assert resume.from_step == 2 and resume.prior == {"steps": 2}
    weights = resume.folder / "global_step2" / "mp_rank_00_model_states.pt"
    assert weights.read_bytes() == b"pickled weights " * 64


def test_a_local_copy_damaged_after_its_download_is_fetched_again(store, tmp_path):
    prefix = _publish_checkpoint(store, 2)
    dest = download_artifact(store, prefix, tmp_path / "copy")
    state = dest / "trainer_state.json"
    state.write_bytes(b'{"global_step": 9}')  # same size, other bytes
    download_artifact(store, prefix, dest)
    assert state.read_bytes() == b'{"global_step": 2}'


def test_a_base_model_changed_in_the_store_fails_its_download(store, tmp_path, tiny_model):  # noqa: F811
    version = "b0" * 16
    with store.publisher(f"models/{version}", kind="model") as pub:
        for f in sorted(tiny_model.iterdir()):
            pub.write_bytes(f.name, f.read_bytes())
    uri = _tamper(store, f"models/{version}", "config.json")
    config = TrainConfig(datasets=["d" * 32], base_version=version, store_uri=store.root_uri)
    with pytest.raises(StoreError) as err:
        resolve_base(store, config, tmp_path / "work")
    assert uri in str(err.value) and "does not match the manifest" in str(err.value)


def _npy(values: list[list[int]]) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array(values, dtype=np.int32))
    return buffer.getvalue()


def test_a_training_set_changed_in_the_store_fails_its_load(store):
    with store.publisher("trainsets/t1", kind=TRAINSET_KIND) as pub:
        pub.write_bytes(INPUT_IDS_FILE, _npy([[1, 2, 3, 4]]))
    key = store.read_manifest("trainsets/t1").key(INPUT_IDS_FILE)
    store.write_bytes(key, _npy([[6, 6, 6, 6]]))  # a valid array, not the published one
    with pytest.raises(StoreError) as err:
        load_input_ids(store, read_training_set(store, "t1"))
    assert store.uri_for(key) in str(err.value) and "does not match the manifest" in str(err.value)


def test_a_dataset_changed_in_the_store_fails_the_training_set_build(store, tiny_tokenizer):  # noqa: F811
    dataset_id = publish_dataset(store, 0)
    key = store.read_manifest(f"datasets/{dataset_id}").key("train.jsonl.gz")
    swapped = [{**doc, "text": "injected text " * 20} for doc in store.read_jsonl(key)]
    store.write_jsonl(key, swapped)  # valid documents, not the published ones
    with pytest.raises(StoreError) as err:
        build_training_set(
            store, [dataset_id], replay_ratio=0.0, seed=0, seq_len=16, tokenizer=tiny_tokenizer
        )
    assert store.uri_for(key) in str(err.value) and "does not match the manifest" in str(err.value)
