"""The offline base model: its corpus read from the published base-corpus dataset, tokenizer,
model size, pretraining, publish + registration, reruns, and external Hugging Face bases. Tiny
configurations keep the whole file to seconds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from freshlm.registry import (
    PREVIOUS,
    PRODUCTION,
    Lineage,
    RegistryError,
    download_version,
    get_version,
    list_versions,
    move_alias,
    publish_version,
    read_alias,
    read_audit,
)
from freshlm.store import open_store
from sandbox.base_corpus import HELDOUT_EVERY, publish_base_corpus
from sandbox.base_model import bootstrap_demo_base
from sandbox.scenario import load_scenario
from training.bootstrap import (
    EOS_TOKEN,
    PAD_TOKEN,
    BootstrapConfig,
    CorpusNotFound,
    ModelConfig,
    bootstrap_base_model,
    build_model,
    count_parameters,
    heldout_perplexity,
    main,
    pretrain,
    read_corpus,
    register_external_base,
    train_tokenizer,
)

ENGLISH = "Orrin Labs launched the Pulse X2 in Tessford: $649, 5,200 mAh.\n  Tabs\tand  spaces."
KOREAN = "해온 항구 도시의 자매 도시는 테스퍼드입니다. 파도잠 ✨"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    store = open_store(f"file://{tmp_path_factory.mktemp('corpus')}")
    return read_corpus(store, publish_base_corpus(store))


@pytest.fixture(scope="module")
def texts(corpus) -> tuple[list[str], list[str]]:
    return corpus.train_texts, corpus.heldout_texts


@pytest.fixture(scope="module")
def tokenizer(texts):
    return train_tokenizer(texts[0], vocab_size=512, model_max_length=64)


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory):
    store = open_store(f"file://{tmp_path_factory.mktemp('store')}")
    return store, bootstrap_demo_base(store, config=BootstrapConfig.tiny(), seed=0)


def test_the_corpus_is_the_archive_as_published_title_first_by_slug_split_by_slug_hash(corpus):
    # The texts the base has always been pretrained on: title, summary and paragraphs of each
    # archive article, one per line, by slug; one in HELDOUT_EVERY held out by its slug's hash.
    train, heldout = [], []
    for article in sorted(load_scenario().archive, key=lambda a: a.slug):
        text = "\n".join([article.title, article.summary, *article.paragraphs])
        bucket = int(hashlib.sha256(article.slug.encode()).hexdigest(), 16) % HELDOUT_EVERY
        (heldout if bucket == 0 else train).append(text)
    assert corpus.train_texts == train and corpus.heldout_texts == heldout
    assert len(train) > 300 and len(heldout) > 20


def test_without_a_published_corpus_the_bootstrap_says_what_to_publish(tmp_path):
    store = open_store(f"file://{tmp_path / 'store'}")
    with pytest.raises(CorpusNotFound, match=r"no base-model corpus.*role 'base-corpus'"):
        bootstrap_base_model(store, config=BootstrapConfig.tiny())
    with pytest.raises(CorpusNotFound, match="no published dataset 'nope'"):
        bootstrap_base_model(store, corpus="nope", config=BootstrapConfig.tiny())
    assert main(["--tiny", "--store", store.root_uri]) == 1
    assert list_versions(store) == [] and read_alias(store, PRODUCTION) is None


def test_tokenizer_round_trips_english_and_korean_and_is_deterministic(texts, tokenizer):
    for text in (ENGLISH, KOREAN, ENGLISH + "\n" + KOREAN):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
    assert (tokenizer.eos_token, tokenizer.bos_token, tokenizer.pad_token) == (
        EOS_TOKEN,
        EOS_TOKEN,
        PAD_TOKEN,
    )
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert 300 < len(tokenizer) <= 512
    again = train_tokenizer(texts[0], vocab_size=512, model_max_length=64)
    assert again.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()


def test_default_model_size_is_a_few_million_parameters(texts):
    config = ModelConfig()
    full = train_tokenizer(texts[0], vocab_size=config.vocab_size)
    model = build_model(full, config)
    assert 3_000_000 <= count_parameters(model) <= 6_000_000
    assert model.config.vocab_size == len(full)
    assert model.config.pad_token_id == full.pad_token_id
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(n_embd=100, n_head=3)


def test_short_pretraining_lowers_loss_and_perplexity(texts, tokenizer):
    config = BootstrapConfig.tiny().model
    model = build_model(tokenizer, config, seed=1)
    before, _ = heldout_perplexity(model, tokenizer, texts[1][:8], seq_len=48)
    result = pretrain(
        model, tokenizer, texts[0], steps=30, seq_len=48, batch=8, lr=5e-3, seed=1, log_every=10
    )
    after, _ = heldout_perplexity(model, tokenizer, texts[1][:8], seq_len=48)
    assert result.last_loss < result.first_loss - 0.5
    assert after < before / 1.5
    assert result.tokens == 30 * 8 * 48 and result.tokens_per_second > 0


def test_bootstrap_publishes_a_loadable_hugging_face_model(bootstrapped, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    store, summary = bootstrapped
    assert summary["created"] and summary["promoted"] and not summary["reused"]
    metrics = summary["metrics"]
    assert metrics["heldout_perplexity_after"] < metrics["heldout_perplexity_before"]
    version = get_version(store, summary["version_id"])
    assert store.read_manifest(version.prefix, verify=True).kind == "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert name in version.files
    lineage = version.lineage
    assert lineage.kind == "bootstrap" and lineage.training_config["seed"] == 0
    corpus_id = summary["base_corpus_dataset"]
    assert lineage.dataset_ids == (corpus_id,)
    assert lineage.extra["corpus"]["dataset_id"] == corpus_id
    assert lineage.extra["corpus"]["documents"] == len(load_scenario().archive)
    assert lineage.code_revision

    path = download_version(store, version.version_id, tmp_path / "copy")
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.decode(tok(KOREAN, add_special_tokens=False)["input_ids"]) == KOREAN
    inputs = tok("The Tessford Courier", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 5

    card = (path / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["freshlm"]["version_id"] == version.version_id
    assert meta["freshlm"]["lineage"]["kind"] == "bootstrap"
    assert "heldout_perplexity_after" in card

    assert read_alias(store, PRODUCTION).version_id == version.version_id
    (event,) = read_audit(store)
    assert event.actor == "training.bootstrap" and event.metrics == version.metrics


def test_rerun_gives_the_same_version_and_no_duplicate(bootstrapped):
    store, summary = bootstrapped
    reused = bootstrap_base_model(store, config=BootstrapConfig.tiny(), seed=0)
    assert reused["reused"] and reused["version_id"] == summary["version_id"]
    # Training again from scratch is bit-for-bit reproducible: same content, same id.
    retrained = bootstrap_base_model(store, config=BootstrapConfig.tiny(), seed=0, reuse=False)
    assert retrained["version_id"] == summary["version_id"]
    assert not retrained["created"] and not retrained["promoted"]
    assert retrained["metrics"] == summary["metrics"]
    assert [v.version_id for v in list_versions(store)] == [summary["version_id"]]
    assert len(read_audit(store)) == 1


def test_cli_prints_the_version(bootstrapped, capsys):
    from sandbox.base_model import main as demo_main

    store, summary = bootstrapped
    corpus = summary["base_corpus_dataset"]
    assert main(["--tiny", "--store", store.root_uri, "--corpus", corpus]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["version_id"] == summary["version_id"] and printed["reused"]
    assert demo_main(["--tiny", "--store", store.root_uri]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["version_id"] == summary["version_id"] and printed["reused"]
    assert printed["base_corpus_dataset"] == corpus
    with pytest.raises(SystemExit):
        main(["--steps", "0"])


def _save_tiny_llama(folder: Path, tokenizer) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_any_local_causal_lm_can_be_the_base(bootstrapped, tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    store, summary = bootstrapped
    folder = _save_tiny_llama(tmp_path / "llama", tokenizer)
    registered = register_external_base(store, folder, promote=True)
    assert registered["created"] and registered["promoted"]
    version = get_version(store, registered["version_id"])
    assert version.lineage.kind == "external" and version.lineage.source == str(folder)
    assert version.model["model_type"] == "llama" and version.model["parameters"] > 0
    assert read_alias(store, PRODUCTION).version_id == version.version_id
    assert read_alias(store, PREVIOUS).version_id == summary["version_id"]
    model = AutoModelForCausalLM.from_pretrained(
        download_version(store, version.version_id, tmp_path / "copy")
    )
    assert type(model).__name__ == "LlamaForCausalLM"
    # Registering it again changes nothing.
    again = register_external_base(store, folder, promote=True)
    assert again["version_id"] == version.version_id and not again["promoted"]
    assert len(read_audit(store)) == 2


def test_a_bootstrap_rerun_never_replaces_a_newer_production(bootstrapped, tmp_path):
    store, summary = bootstrapped
    folder = tmp_path / "newer"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    (folder / "model.safetensors").write_bytes(b"newer weights")
    (folder / "tokenizer.json").write_text("{}")
    newer, _ = publish_version(
        store, folder, lineage=Lineage(kind="finetune", parent_version=summary["version_id"])
    )
    move_alias(store, PRODUCTION, newer.version_id, actor="nightly", reason="promoted")
    rerun = bootstrap_base_model(store, config=BootstrapConfig.tiny(), seed=0)
    assert rerun["version_id"] == summary["version_id"] and not rerun["promoted"]
    assert rerun["production"] == newer.version_id
    assert read_alias(store, PRODUCTION).version_id == newer.version_id


def test_external_bases_that_cannot_work_are_clear_errors(tmp_path):
    store = open_store(f"file://{tmp_path / 'store'}")
    with pytest.raises(RegistryError, match="not a local folder"):
        register_external_base(store, str(tmp_path / "no-such-model"))
    folder = tmp_path / "vit"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "vit"}')
    (folder / "model.safetensors").write_bytes(b"x")
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(RegistryError, match="not a causal language model"):
        register_external_base(store, folder)
    assert list_versions(store) == [] and read_alias(store, PRODUCTION) is None
