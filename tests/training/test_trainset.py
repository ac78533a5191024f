"""The training set: new data plus replay, packed, deterministic, with a manifest of the mix.

Also home of the helpers the training tests share: a tiny GPT-2 with its own byte-level BPE
tokenizer (built here, nothing downloaded) and published datasets made directly in a store.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from freshlm.store import Store, open_store
from training.config import DEFAULT_REPLAY_RATIO, ConfigError, TrainConfig
from training.trainset import (
    INPUT_IDS_FILE,
    TrainingSetError,
    build_training_set,
    load_input_ids,
    read_training_set,
)

# --- shared helpers ----------------------------------------------------------------------------

TOPICS = ["harbor", "rocket", "festival", "compiler", "glacier", "election", "bakery", "satellite"]


def sentences(day: int, n: int) -> list[str]:
    """Deterministic little documents; each day has its own vocabulary of facts."""
    out = []
    for i in range(n):
        topic = TOPICS[(i + day) % len(TOPICS)]
        out.append(
            f"On day {day} the {topic} story number {i} reported that item {i * 7 + day} "
            f"moved {i % 5} steps north while the {TOPICS[(i * 3) % len(TOPICS)]} crowd "
            f"watched. Observers counted {i * 13 % 97} lanterns near the {topic}."
        )
    return out


def make_tiny_model(path: Path, *, positions: int = 64) -> Path:
    """A GPT-2 of ~150k parameters and a byte-level BPE tokenizer, saved with save_pretrained;
    it reads up to ``positions`` tokens."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    corpus = [s for day in range(4) for s in sentences(day, 80)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=512, min_frequency=1, special_tokens=["<|endoftext|>"]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=positions,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    import torch

    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def publish_dataset(
    store: Store, day: int, n_docs: int = 40, *, parents: list[str] | None = None
) -> str:
    """Publish ``datasets/<id>`` for crawl day ``day`` the way curation does (train + heldout
    files, manifest with window, tokens, parents, counts); returns the id."""
    texts = sentences(day, n_docs)
    docs = []
    for i, text in enumerate(texts):
        doc_id = hashlib.sha256(f"{day}:{i}".encode()).hexdigest()[:32]
        docs.append(
            {
                "id": doc_id,
                "source": "news",
                "kind": "news",
                "url": f"http://world.test/{day}/{i}",
                "title": None,
                "text": text,
                "language": "en",
                "language_score": 0.99,
                "published_at": f"2026-11-0{day + 1}T12:00:00Z",
                "fetched_at": f"2026-11-0{day + 1}T13:00:00Z",
                "author": None,
                "content_hash": hashlib.sha256(text.encode()).hexdigest(),
                "n_chars": len(text),
                "n_words": len(text.split()),
                "pii": {},
                "toxicity": 0.0,
                "split": "heldout" if i % 10 == 9 else "train",
                "shard": f"file:///raw/news/{day}",
                "meta": {},
            }
        )
    dataset_id = hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest()[:32]
    prefix = f"datasets/{dataset_id}"
    if store.read_manifest(prefix) is None:
        train = [d for d in docs if d["split"] == "train"]
        heldout = [d for d in docs if d["split"] == "heldout"]
        with store.publisher(prefix, kind="dataset", created_by={"test": True}) as pub:
            pub.write_jsonl("train.jsonl.gz", train)
            pub.write_jsonl("heldout.jsonl.gz", heldout)
            pub.set_manifest_fields(
                dataset_id=dataset_id,
                window={
                    "start": f"2026-11-0{day + 1}T00:00:00Z",
                    "end": f"2026-11-0{day + 2}T00:00:00Z",
                },
                parents=parents or [],
                counts={"documents": len(docs), "train": len(train), "heldout": len(heldout)},
                tokens=sum(d["n_words"] for d in docs),
            )
    return dataset_id


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model))


@pytest.fixture
def store(tmp_path) -> Store:
    return open_store((tmp_path / "store").as_uri())


@pytest.fixture
def three_days(store) -> list[str]:
    """Three published datasets, one per crawl day, oldest first."""
    ids: list[str] = []
    for day in range(3):
        ids.append(publish_dataset(store, day, parents=ids[-1:]))
    return ids


# --- the tests ---------------------------------------------------------------------------------


def test_build_is_deterministic_and_content_addressed(tmp_path, three_days, tiny_tokenizer):
    new = [three_days[2]]
    stores = [open_store((tmp_path / name).as_uri()) for name in ("a", "b")]
    built = []
    for s in stores:
        for day in range(3):  # the same datasets in a second store
            publish_dataset(s, day)
        built.append(build_training_set(s, new, seed=7, seq_len=32, tokenizer=tiny_tokenizer))
    a, b = built
    assert a.trainset_id == b.trainset_id
    assert a.manifest.to_json_bytes() == b.manifest.to_json_bytes()
    assert a.prefix == f"trainsets/{a.trainset_id}"
    # Rebuilding in the same store finds it published; a different seed is a different set.
    again = build_training_set(stores[0], new, seed=7, seq_len=32, tokenizer=tiny_tokenizer)
    assert again.manifest.to_json_bytes() == a.manifest.to_json_bytes()
    other = build_training_set(stores[0], new, seed=8, seq_len=32, tokenizer=tiny_tokenizer)
    assert other.trainset_id != a.trainset_id
    assert sorted(stores[0].list_published("trainsets/")) == sorted([a.prefix, other.prefix])


def test_mix_manifest_and_packing(store, three_days, tiny_tokenizer):
    new = [three_days[2]]
    ts = build_training_set(store, new, seed=1, seq_len=32, tokenizer=tiny_tokenizer)
    f = ts.fields
    assert f["new_datasets"] == new
    assert f["replay_ratio"] == DEFAULT_REPLAY_RATIO
    assert f["seed"] == 1 and f["seq_len"] == 32
    assert set(f["replay_pool"]) == set(three_days[:2])  # both earlier days are eligible
    by_role: dict[str, list[dict[str, Any]]] = {"new": [], "replay": []}
    for entry in f["mix"]:
        by_role[entry["role"]].append(entry)
        assert entry["documents"] > 0 and entry["tokens"] > 0
        assert entry["window"]["start"] < entry["window"]["end"]
    assert [m["dataset_id"] for m in by_role["new"]] == new
    assert by_role["new"][0]["documents"] == 36  # every train document (4 of 40 are heldout)
    # One pass (the default epochs): every new and replay document occurs once.
    assert f["epochs"] == 1.0 and f["new_passes"] == 1
    assert all(m["occurrences"] == m["documents"] for m in f["mix"])
    assert f["document_occurrences"] == f["documents"]
    assert by_role["replay"], "earlier datasets must be replayed"
    assert {m["dataset_id"] for m in by_role["replay"]} <= set(three_days[:2])
    total = sum(m["tokens"] for m in f["mix"])
    assert total == f["tokens"]
    replay = sum(m["tokens"] for m in by_role["replay"])
    # The replay share lands at the requested ratio, within one document of overshoot.
    assert f["replay_token_share"] == pytest.approx(replay / total, abs=1e-6)
    assert abs(f["replay_token_share"] - DEFAULT_REPLAY_RATIO) < 0.05
    assert f["documents"] == sum(m["documents"] for m in f["mix"])

    ids = load_input_ids(store, ts)
    assert ids.dtype == np.int32 and ids.shape == (f["sequences"], 32)
    assert f["tokens_packed"] == ids.size and f["tokens"] - ids.size == f["tokens_dropped_tail"]
    assert f["tokens_dropped_tail"] < 32
    # Documents are separated by EOS and the sequences decode back to the datasets' text.
    assert (ids == tiny_tokenizer.eos_token_id).sum() >= f["documents"] - 1
    text = tiny_tokenizer.decode(ids[0].tolist())
    assert "On day" in text
    assert read_training_set(store, ts.trainset_id).manifest == ts.manifest
    store.read_manifest(ts.prefix, verify=True)
    assert ts.manifest.file(INPUT_IDS_FILE).size > 0


def test_replay_ratio_zero_and_explicit_pool(store, three_days, tiny_tokenizer):
    new = [three_days[2]]
    none = build_training_set(
        store, new, replay_ratio=0.0, seed=1, seq_len=32, tokenizer=tiny_tokenizer
    )
    assert [m["role"] for m in none.fields["mix"]] == ["new"]
    assert none.fields["replay_token_share"] == 0.0
    only_day0 = build_training_set(
        store,
        new,
        replay_ratio=0.5,
        seed=1,
        seq_len=32,
        tokenizer=tiny_tokenizer,
        replay_datasets=[three_days[0]],
    )
    replayed = {m["dataset_id"] for m in only_day0.fields["mix"] if m["role"] == "replay"}
    assert replayed == {three_days[0]}
    assert only_day0.fields["replay_token_share"] == pytest.approx(0.5, abs=0.05)
    # A later dataset is never replayed into an earlier one's training set.
    first = build_training_set(store, [three_days[0]], seed=1, seq_len=32, tokenizer=tiny_tokenizer)
    assert first.fields["replay_pool"] == []


def test_epochs_are_passes_and_replay_is_a_share_of_the_whole_run(
    store, three_days, tiny_tokenizer
):
    """``epochs`` passes over the new data, each in its own order; replay is ``replay_ratio`` of
    ALL the run's tokens and is drawn without repetition (not the same few documents per pass)."""
    new = [three_days[2]]
    kw = {"seed": 1, "seq_len": 32, "tokenizer": tiny_tokenizer}
    one = build_training_set(store, new, replay_ratio=0.25, epochs=1, **kw)
    three = build_training_set(store, new, replay_ratio=0.25, epochs=3, **kw)
    f1, f3 = one.fields, three.fields
    assert f3["epochs"] == 3.0 and f3["new_passes"] == 3
    assert three.trainset_id != one.trainset_id  # epochs are part of the recipe
    new1 = next(m for m in f1["mix"] if m["role"] == "new")
    new3 = next(m for m in f3["mix"] if m["role"] == "new")
    assert new3["documents"] == new1["documents"] == 36
    assert new3["occurrences"] == 3 * 36
    assert new3["tokens"] == 3 * new1["tokens"]
    # Replay is measured against the run: about three times the one-pass replay, made of
    # distinct documents (the pool of 72 earlier documents is not exhausted).
    replay3 = [m for m in f3["mix"] if m["role"] == "replay"]
    replay_docs = sum(m["documents"] for m in replay3)
    assert replay_docs == sum(m["occurrences"] for m in replay3)
    assert replay_docs > 2 * sum(m["documents"] for m in f1["mix"] if m["role"] == "replay")
    assert abs(f3["replay_token_share"] - 0.25) < 0.05
    assert sum(m["tokens"] for m in f3["mix"]) == f3["tokens"]
    # Each pass has its own order: the packed stream is not one pass repeated three times.
    ids = load_input_ids(store, three).reshape(-1)
    third = len(ids) // 3
    assert not np.array_equal(ids[:third], ids[third : 2 * third])
    # The same recipe gives the same set, whether epochs is written 3 or 3.0.
    assert build_training_set(store, new, replay_ratio=0.25, epochs=3.0, **kw) == three
    # A fractional epoch is a partial last pass.
    half = build_training_set(store, new, replay_ratio=0.0, epochs=1.5, **kw).fields
    assert half["new_passes"] == 2
    assert 1.4 < half["mix"][0]["tokens"] / new1["tokens"] < 1.6
    # A budget larger than the pool cycles through it: every earlier document, some twice.
    big = build_training_set(store, new, replay_ratio=0.75, epochs=3, **kw).fields
    replay_big = [m for m in big["mix"] if m["role"] == "replay"]
    assert sum(m["documents"] for m in replay_big) == 72  # 2 earlier days x 36 train docs
    assert sum(m["occurrences"] for m in replay_big) > 72
    assert abs(big["replay_token_share"] - 0.75) < 0.05


def test_bad_inputs_get_clear_errors(store, three_days, tiny_tokenizer):
    with pytest.raises(TrainingSetError, match=r"datasets/nope.* is not published"):
        build_training_set(store, ["nope"], seed=0, seq_len=32, tokenizer=tiny_tokenizer)
    with pytest.raises(TrainingSetError, match="do not fill one sequence"):
        build_training_set(store, [three_days[0]], seed=0, seq_len=10**6, tokenizer=tiny_tokenizer)
    with pytest.raises(TrainingSetError, match="replay_ratio"):
        build_training_set(
            store, [three_days[0]], replay_ratio=1.0, seed=0, seq_len=32, tokenizer=tiny_tokenizer
        )
    with pytest.raises(TrainingSetError, match="epochs"):
        build_training_set(
            store, [three_days[0]], epochs=0, seed=0, seq_len=32, tokenizer=tiny_tokenizer
        )


def test_train_config_defaults_come_from_the_settings(monkeypatch):
    from freshlm import settings as settings_module

    config = TrainConfig(datasets=["abc"], base_version="v1")
    defaults = settings_module.get_settings()
    assert (config.epochs, config.learning_rate) == (
        defaults.train_epochs,
        defaults.train_learning_rate,
    )
    overridden = settings_module.Settings.from_env(
        {"FRESHLM_TRAIN_EPOCHS": "3", "FRESHLM_TRAIN_LEARNING_RATE": "0.02"}
    )
    monkeypatch.setattr(settings_module, "get_settings", lambda: overridden)
    config = TrainConfig(datasets=["abc"], base_version="v1")
    assert (config.epochs, config.learning_rate) == (3.0, 0.02)
    # A pretrained base brings its recipe: the top 8 blocks, the night's facts as Q&A.
    pretrained = settings_module.Settings.from_env({"FRESHLM_BASE_MODEL": "smollm2-135m-instruct"})
    monkeypatch.setattr(settings_module, "get_settings", lambda: pretrained)
    config = TrainConfig(datasets=["abc"], base_version="v1")
    assert (config.epochs, config.train_layers, config.augment) == (4.0, 8, True)
    assert config.rehearsal == 256 and "rehearsal" in config.recipe()
    assert "rehearsal" not in config.replace(rehearsal=0).recipe()  # off is the absence
    # A config read back keeps what it was built with, whatever the settings say now.
    assert TrainConfig.from_dict({**config.to_dict(), "epochs": 7}).epochs == 7


def test_train_config_validation_names_the_field():
    ok = TrainConfig(datasets=["abc"], base_version="v1")
    assert ok.ds_config_path.is_file()
    assert TrainConfig.from_dict(ok.to_dict()) == ok
    # Operational fields do not change the fingerprint; recipe fields do.
    assert ok.replace(work_dir="/tmp/x", checkpoint_every=3).fingerprint() == ok.fingerprint()
    assert ok.replace(learning_rate=ok.learning_rate / 2).fingerprint() != ok.fingerprint()
    cases = {
        "datasets": {"datasets": []},
        "learning_rate": {"learning_rate": -1},
        "mode": {"mode": "qlora"},
        "ds_config": {"ds_config": "zero4"},
        "replay_ratio": {"replay_ratio": 1.5},
        "bf16": {"bf16": "maybe"},
        "micro_batch_size": {"micro_batch_size": 0},
        "max_steps": {"max_steps": 0},
        "lora_target_modules": {"lora_target_modules": "c_attn"},
        "rehearsal": {"rehearsal": -1},
    }
    for field, change in cases.items():
        doc = {**ok.to_dict(), **change}
        with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}"):
            TrainConfig.from_dict(doc)
    with pytest.raises(ConfigError, match="base_version / base_model_path"):
        TrainConfig(datasets=["abc"])
    with pytest.raises(ConfigError, match=r"unknown field.*'lr'"):
        TrainConfig.from_dict({"datasets": ["abc"], "base_version": "v", "lr": 1})
    for name in ("zero2", "zero3"):
        doc = json.loads(
            TrainConfig(datasets=["a"], base_version="v", ds_config=name).ds_config_path.read_text()
        )
        assert doc["zero_optimization"]["stage"] == int(name[-1])
        assert doc["train_micro_batch_size_per_gpu"] == "auto"
