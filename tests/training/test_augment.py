"""Knowledge augmentation: a new document's facts stated in several forms, derived from the
document alone (never from the evaluation's questions), and added to the training set."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from training.augment import augment_document, chat_turn, fact_sentences, plain_turn
from training.trainset import build_training_set

ROOT = Path(__file__).resolve().parents[2]

LAUNCH = {
    "id": "d1",
    "title": "Orrin Labs unveils the Pulse X2",
    "language": "en",
    "text": (
        "Orrin Labs unveiled the Pulse X2 in Tessford on Monday. "
        "The base model of the Pulse X2 costs $649 and goes on sale on November 13. "
        "Fans call the launch queue 'tide-locked' waiting. Short line."
    ),
}


def test_fact_sentences_are_the_ones_with_a_salient_span():
    found = fact_sentences(LAUNCH["text"], "en")
    texts = [s.text for s in found]
    assert "Short line." not in texts  # too short, and nothing to learn from it
    price = next(s for s in found if "$649" in s.text)
    assert {(sp.type, price.text[sp.start : sp.end]) for sp in price.spans} >= {
        ("price", "$649"),
        ("date", "November 13"),
    }


def test_each_fact_is_stated_asked_back_and_blanked():
    texts = augment_document(LAUNCH, plain_turn)
    sentence = "The base model of the Pulse X2 costs $649 and goes on sale on November 13."
    assert f"Orrin Labs unveils the Pulse X2: {sentence}" in texts
    # Asked back up to the span, answered with the whole sentence: the model learns to say it.
    assert plain_turn("The base model of the Pulse X2 costs how much?", sentence) in texts
    assert plain_turn(f"Fill in the blank: {sentence.replace('$649', '___')}", "$649") in texts
    # A new term is asked for its meaning.
    assert any(t.startswith("Question: What does 'tide-locked' mean?") for t in texts)
    # Deterministic.
    assert augment_document(LAUNCH, plain_turn) == texts


class _Template:
    chat_template = "set"

    def apply_chat_template(self, messages, tokenize):
        assert tokenize is False
        return "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages)


def test_turns_use_the_model_s_chat_template_when_it_has_one():
    turn = chat_turn(_Template())
    assert turn("Q?", "A.") == "<|user|>Q?<|end|><|assistant|>A.<|end|>"
    assert chat_turn(object()) is plain_turn


def test_augmentation_reads_nothing_but_the_documents(tmp_path):
    """Run over a whole sandbox day with every file open and network connection audited: the
    world's fact and probe files are never read and no connection is made."""
    from sandbox.records import day_records
    from sandbox.scenario import load_scenario

    scenario = load_scenario()
    docs = [
        {"id": r["id"], "title": r["title"], "text": r["text"], "language": r["language"]}
        for r in day_records(scenario, scenario.days[0].date)
    ]
    (tmp_path / "docs.json").write_text(json.dumps(docs))
    script = textwrap.dedent(
        """
        import json, sys
        opened, connected = [], []
        def audit(event, args):
            if event == "open" and isinstance(args[0], str):
                opened.append(args[0])
            elif event == "socket.connect":
                connected.append(repr(args[1]))
        docs = json.load(open(sys.argv[1]))
        sys.addaudithook(audit)
        from training.augment import augment_documents
        out = augment_documents(docs)
        print(json.dumps({"opened": opened, "connected": connected, "docs": len(out),
                          "texts": sum(len(t) for t in out.values()),
                          "modules": sorted(m for m in sys.modules if m.startswith("sandbox"))}))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "docs.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["docs"] > 10 and report["texts"] > 100
    assert report["connected"] == [] and report["modules"] == []
    assert not [p for p in report["opened"] if "facts" in p or "probes" in p or "sandbox" in p]


def test_an_augmented_training_set_holds_the_extra_texts(tmp_path):
    from transformers import AutoTokenizer

    from freshlm.store import open_store
    from tests.training.test_trainset import make_tiny_model, publish_dataset

    store = open_store((tmp_path / "store").as_uri())
    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    day = publish_dataset(store, 0)
    kw = {"epochs": 1.0, "seed": 0, "seq_len": 32, "tokenizer": tokenizer, "replay_ratio": 0.0}
    plain = build_training_set(store, [day], **kw)
    augmented = build_training_set(store, [day], augment=True, **kw)
    assert plain.fields["augmented_texts"] == 0 and "augment" not in plain.fields
    assert augmented.fields["augmented_texts"] > 0 and augmented.fields["augment"] is True
    assert augmented.trainset_id != plain.trainset_id
    assert augmented.n_sequences > plain.n_sequences


def test_training_only_the_top_blocks_freezes_everything_below(tmp_path):
    from transformers import AutoModelForCausalLM

    from tests.training.test_trainset import make_tiny_model
    from training.train import freeze_below_top_layers, transformer_blocks

    model = AutoModelForCausalLM.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    blocks = transformer_blocks(model)
    trainable = freeze_below_top_layers(model, 1)
    top = sum(p.numel() for p in blocks[-1].parameters())
    final_norm = sum(p.numel() for p in model.transformer.ln_f.parameters())
    assert trainable == top + final_norm
    assert not any(p.requires_grad for p in blocks[0].parameters())
    assert not model.get_input_embeddings().weight.requires_grad
