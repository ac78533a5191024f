"""Knowledge augmentation: a new document's facts stated in several forms, derived from the
document alone (never from the evaluation's questions), and added to the training set."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from training.augment import (
    QA,
    _fronted,
    augment_document,
    chat_turn,
    document_forms,
    document_topic,
    fact_sentences,
    plain_turn,
)
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


def test_each_fact_is_stated_and_asked_for_by_its_whole_sentence():
    texts = augment_document(LAUNCH, plain_turn)
    sentence = "The base model of the Pulse X2 costs $649 and goes on sale on November 13."
    assert f"Orrin Labs unveils the Pulse X2: {sentence}" in texts
    # The span replaced by its wh-phrase, every other word kept; answered by the span and by
    # the whole sentence (the model learns to say it).
    question = "The base model of the Pulse X2 costs how much and goes on sale on November 13?"
    assert plain_turn(question, "$649") in texts
    assert plain_turn(question, sentence) in texts
    when = "The base model of the Pulse X2 costs $649 and goes on sale on when?"
    assert plain_turn(when, "November 13") in texts
    # A new term is asked for its meaning.
    assert any(t.startswith("Question: What does 'tide-locked' mean?") for t in texts)
    # Deterministic.
    assert augment_document(LAUNCH, plain_turn) == texts


def test_the_document_s_topic_is_named_where_its_sentence_does_not():
    review = {
        "id": "d2",
        "title": "Hands-on with the Pulse X2",
        "language": "en",
        "text": (
            "I spent an hour with the Pulse X2 after the launch. "
            "It has a 5,200 mAh battery and weighs 182 grams. "
            "Replacement batteries will cost $59 at service desks."
        ),
    }
    assert document_topic(review) == "Pulse X2"
    texts = augment_document(review, plain_turn)
    assert (
        plain_turn("Pulse X2 has a how many mAh battery and weighs 182 grams?", "5,200 mAh")
        in texts
    )
    asked = "Pulse X2: Replacement batteries will cost how much at service desks?"
    assert plain_turn(asked, "$59") in texts
    stated = "Pulse X2: Replacement batteries will cost $59 at service desks."
    assert plain_turn(asked, stated) in texts
    # The topic itself is never the answer to a question that names it.
    assert not any(t.endswith("\nAnswer: Pulse X2") for t in texts)


def test_each_span_is_also_asked_as_a_user_asks_wh_word_first():
    texts = augment_document(LAUNCH, plain_turn)
    sentence = "The base model of the Pulse X2 costs $649 and goes on sale on November 13."
    # "does" + the verb's base form, the subject moved after it; answered by the span and by
    # the sentence, as the in-place question is.
    assert plain_turn("How much does the base model of the Pulse X2 cost?", "$649") in texts
    asked = "How much does the base model of the Pulse X2 cost?"
    assert plain_turn(asked, sentence) in texts


def test_fronted_questions_follow_the_verb_s_form_and_name_the_topic():
    def asked(text: str, value: str, topic: str | None = "Pulse X2") -> str | None:
        sentence = next(s for s in fact_sentences(text, "en") if value in s.text)
        span = next(sp for sp in sentence.spans if sentence.text[sp.start : sp.end] == value)
        return _fronted(sentence, span, topic)

    # A pronoun subject stands for the topic; a figure's unit names what is counted; a short
    # phrase after the span stays.
    assert asked("Its battery holds 5,200 mAh in all.", "5,200 mAh") == (
        "How many mAh does Pulse X2's battery hold in all?"
    )
    # The past tense takes "did", and a date's preposition goes with it.
    opened = "Orrin Labs opened the store in Tessford on November 10."
    assert asked(opened, "November 10", topic=None) == (
        "When did Orrin Labs open the store in Tessford?"
    )
    # A modal keeps its verb; the topic is named in front when the subject does not.
    assert asked("Replacement batteries will cost $59 at service desks.", "$59") == (
        "Pulse X2: How much will Replacement batteries cost at service desks?"
    )
    # "be": the subject after it; "the ..." is owned by the topic.
    assert asked("The next meeting is on December 17.", "December 17") == (
        "When is Pulse X2's next meeting?"
    )
    # A name after a preposition keeps the preposition at the end.
    assert asked("The Pulse X2 runs on the Kite 3 chip, Orrin said.", "Kite 3") is None
    assert asked("The Pulse X2 runs on the Kite 3, a chip of its own.", "Kite 3") == (
        "Who or what does the Pulse X2 run on?"
    )
    # -ies, -es and irregular verbs.
    assert asked("Every Pulse X2 carries $20 of credit.", "$20") == (
        "How much does every Pulse X2 carry?"
    )
    assert asked("The phone goes on sale on November 13.", "November 13") == (
        "When does Pulse X2's phone go on sale?"
    )
    assert asked("Shares in Orrin rose on November 12 in Tessford.", "November 12") == (
        "Pulse X2: When did Shares in Orrin rise in Tessford?"
    )


def test_sentences_of_other_shapes_get_no_fronted_question():
    def asked(text: str, value: str) -> str | None:
        sentence = next(s for s in fact_sentences(text, "en") if value in s.text)
        span = next(sp for sp in sentence.spans if sentence.text[sp.start : sp.end] == value)
        return _fronted(sentence, span, None)

    # A figure inside a longer phrase, a figure after a preposition, a figure without a unit,
    # a subject holding a clause of its own, a sentence opening with a phrase: rules would
    # write a wrong question, so none is written.
    assert asked("Every Pulse X2 carries a 30-month warranty.", "30-month") is None
    assert asked("The phone charges at 45 watts with a cable.", "45 watts") is None
    assert asked("Shares in Orrin Labs rose 6 per cent on the news.", "6 per cent") is None
    assert asked("Orrin said the back costs $20 to replace.", "$20") is None
    assert asked("For the first time since 2019 the festival moves to Millrace Park.",
                 "Millrace Park") is None  # fmt: skip


def test_a_sentence_that_defines_the_topic_answers_what_it_means():
    post = {
        "id": "p1",
        "language": "en",
        "text": "Everyone says 'tide-locked' now. It means glued to your phone, apparently.",
    }
    assert document_topic(post) == "tide-locked"
    texts = augment_document(post, plain_turn)
    assert (
        plain_turn(
            "What does tide-locked mean?", "tide-locked means glued to your phone, apparently."
        )
        in texts
    )


def test_a_sentence_ends_with_its_paragraph():
    doc = {"id": "d3", "language": "en", "text": 'It costs $649 for the base model.\n\n"Quote'}
    assert [s.text for s in fact_sentences(doc["text"], "en")] == [
        "It costs $649 for the base model."
    ]


def test_a_sentence_ends_before_the_quote_that_opens_the_next():
    text = '"Old models miss new prices," said the director, Dr. Tunde Adeyemi. "We fix that."'
    (sentence,) = fact_sentences(text, "en")
    assert sentence.text.endswith("Tunde Adeyemi.")
    doc = {"title": "Ondra University opens a lab", "text": text}
    asked = [f.question for f in document_forms(doc) if isinstance(f, QA)]
    assert asked and all(q.endswith("Dr. who or what?") for q in asked), asked


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
    _, _, plain, augmented = plain_and_augmented_sets(tmp_path)
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


def augmented_without_and_with(tmp_path, doc, **options):
    """``(tokenizer, (texts, rival groups) without, (texts, rival groups) with options)``: the
    augmentation's documents of ``doc`` for the tiny model's tokenizer, built by the training
    set's own path (``training.trainset._augmented_docs``) without and with ``options``."""
    from transformers import AutoTokenizer

    from tests.training.test_trainset import make_tiny_model
    from training.trainset import _augmented_docs

    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    return (
        tokenizer,
        _augmented_docs("ds", [doc], tokenizer)[:2],
        _augmented_docs("ds", [doc], tokenizer, **options)[:2],
    )


def plain_and_augmented_sets(tmp_path):
    """``(store, tokenizer, plain set, augmented set)``: one tiny day's training set built
    without and with the augmentation, for the tiny model's tokenizer."""
    from transformers import AutoTokenizer

    from freshlm.store import open_store
    from tests.training.test_trainset import make_tiny_model, publish_dataset

    store = open_store((tmp_path / "store").as_uri())
    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    day = publish_dataset(store, 0)
    kw = {"epochs": 1.0, "seed": 0, "seq_len": 32, "tokenizer": tokenizer, "replay_ratio": 0.0}
    plain = build_training_set(store, [day], **kw)
    return store, tokenizer, plain, build_training_set(store, [day], augment=True, **kw)


def test_an_augmented_turn_trains_on_its_answer_not_its_question(tmp_path):
    """The packed set carries a loss mask: a turn's question tokens are context only (label
    -100 in the rank's dataset), its answer and every plain document's tokens are trained."""
    import numpy as np

    from training.train import _packed_dataset
    from training.trainset import load_input_ids, load_loss_mask

    store, tokenizer, plain, augmented = plain_and_augmented_sets(tmp_path)
    assert load_loss_mask(store, plain) is None
    ids, mask = load_input_ids(store, augmented), load_loss_mask(store, augmented)
    assert mask is not None and mask.shape == ids.shape
    untrained = augmented.fields["context_only_tokens"] + augmented.fields["padding_tokens"]
    assert untrained == int((mask == 0).sum()) and augmented.fields["context_only_tokens"] > 0
    # The masked stretches are exactly the turns' questions (after any padding that ends a row
    # before a turn): decoded, each ends "Answer:".
    flat_ids, flat_mask = ids.reshape(-1), mask.reshape(-1)
    edges = np.flatnonzero(np.diff(flat_mask.astype(int)) == 1) + 1  # context -> trained
    eos = tokenizer.eos_token_id
    for edge in edges[:20]:
        start = edge - 1
        while start > 0 and flat_mask[start - 1] == 0 and flat_ids[start - 1] != eos:
            start -= 1
        question = tokenizer.decode(flat_ids[start:edge])
        assert question.startswith("Question: ") and question.endswith("\nAnswer:"), question
    row = int(np.flatnonzero((mask == 0).any(axis=1))[0])
    labels = _packed_dataset(ids, mask)[row]["labels"].numpy()
    assert (labels == -100).tolist() == (mask[row] == 0).tolist()
    assert (labels[mask[row] == 1] == ids[row][mask[row] == 1]).all()


def test_a_figure_is_asked_for_by_what_it_counts():
    doc = {
        "id": "d3",
        "title": "Lantern Festival",
        "language": "en",
        "text": (
            "Last year's festival drew an estimated 38,000 visitors to the old town. "
            "Unemployment in the town stands at 7.4 per cent this autumn. "
            "Every stall gets a 30-month licence from the council."
        ),
    }
    texts = augment_document(doc, plain_turn)
    asked = "Last year's festival drew an estimated how many visitors to the old town?"
    assert plain_turn(asked, "38,000 visitors") in texts
    asked = "Unemployment in the town stands at what percent this autumn?"
    assert plain_turn(asked, "7.4 per cent") in texts
    asked = "Every stall gets a licence of how many months from the council?"
    assert plain_turn(asked, "30-month") in texts


def test_an_in_place_question_ends_with_its_clause_unless_the_span_sits_in_an_insert():
    doc = {
        "id": "d4",
        "title": "Orrin Labs",
        "language": "en",
        "text": (
            "Orrin employs about 2,300 people, 1,400 of them in Tessford. "
            "The plant, which opened in 2017 on a former mill site, employs 650 people."
        ),
    }
    texts = augment_document(doc, plain_turn)
    assert plain_turn("Orrin employs about how many people?", "2,300 people") in texts
    asked = "The plant, which opened in when on a former mill site, employs 650 people?"
    assert plain_turn(asked, "2017") in texts


def test_a_korean_fact_is_asked_in_korean_the_wh_word_in_the_span_s_place():
    post = {
        "id": "k1",
        "title": "",
        "language": "ko",
        "text": (
            "오린 펄스 X2 배터리 5,200mAh래. 해온에도 11월 13일에 나온다는데 색 너무 예쁘다. "
            "랜턴 축제 11월 28일로 연기됐대요. 답장해야 할 글이 별저장에만 37개… "
            "해온 2호선은 파도잠 하기 딱 좋은 속도임."
        ),
    }
    texts = augment_document(post, plain_turn)
    for question, span in [
        ("오린 펄스 X2 배터리 몇 mAh래?", "5,200mAh"),
        ("해온에도 언제 나온다는데 색 너무 예쁘다?", "11월 13일"),
        ("랜턴 축제 언제로 연기됐대요?", "11월 28일"),  # the particle stays attached
        ("답장해야 할 글이 별저장에만 몇 개?", "37개"),
        ("해온 몇 호선은 파도잠 하기 딱 좋은 속도임?", "2호선"),
    ]:
        assert plain_turn(question, span) in texts
    # no English wh-phrase inside a Korean sentence
    asked = [t for t in texts if t.startswith("Question: ")]
    assert asked
    assert not any(w in t for t in asked for w in ("how many", "how much", " when", "who or"))
