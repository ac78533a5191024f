"""Questions the base writes for the night's figures and dates: which are kept, how they are
checked, published once and trained as span turns. The real base writing them is in
``test_base_import.py`` (slow)."""

from __future__ import annotations

import random

import pytest

from freshlm.settings import Settings
from freshlm.store import open_store
from tests.training.test_context_answers import PHONE
from tests.training.test_trainset import make_tiny_model, publish_dataset
from training import written_questions as wq
from training.config import ConfigError, TrainConfig
from training.trainset import build_training_set, load_input_ids, load_loss_mask
from training.written_questions import (
    WRITTEN_QUESTIONS_KIND,
    SpanToAsk,
    WrittenQuestion,
    ensure_written_questions,
    read_written_questions,
    round_trip_candidates,
    spans_to_ask,
    usable,
    written_questions_prefix,
)

MODEL = "0123456789abcdef0123456789abcdef"
SENTENCE = "The Harbour Line ferry will carry 1,200 passengers a day from its new pier in Brask."


@pytest.mark.parametrize(
    ("question", "span", "span_type"),
    [
        ("How many passengers will the Harbour Line ferry carry a day?", "1,200", "number"),
        ("Where is the new pier of the Harbour Line ferry?", "Brask", "entity"),
        # "cost" names the sentence's "costs", "employ" its "employs".
        ("How much does the Velmora K3 tablet cost?", "$649", "price"),
    ],
)
def test_a_question_in_the_sentence_terms_with_a_fitting_wh_word_is_usable(
    question, span, span_type
):
    sentence = PHONE["text"] if span == "$649" else SENTENCE
    assert usable(question, sentence, span, span_type)


@pytest.mark.parametrize(
    ("question", "span", "span_type", "why"),
    [
        ("How many passengers will the ferry carry", "1,200", "number", "not a question"),
        ("When does the Harbour Line ferry carry passengers?", "1,200", "number", "wh-word"),
        ("How many days does the 1,200 ferry sail?", "1,200", "number", "holds the answer"),
        ("How many tourists visit Brask each summer?", "1,200", "number", "tourists, summer"),
        ("What is the name of the city?", "Brask", "date", "a date asked by what"),
        ("How many passengers? How many piers?", "1,200", "number", "two questions"),
    ],
)
def test_a_question_of_the_wrong_kind_or_beyond_the_sentence_is_not_usable(
    question, span, span_type, why
):
    assert not usable(question, SENTENCE, span, span_type), why


def test_a_question_naming_one_word_of_the_sentence_is_not_usable():
    """It singles out no fact, and it has the shape of a general question."""
    assert not usable("How many passengers are there?", SENTENCE, "1,200", "number")


def test_only_the_figures_and_dates_of_english_documents_are_asked():
    korean = {
        "id": "k1",
        "language": "ko",
        "text": "서울시는 3월 3일 새 버스 노선 41번을 연다고 밝혔다.",
    }
    no_id = {**PHONE, "id": ""}
    night = spans_to_ask([PHONE, PHONE, korean, no_id])  # the same document twice: once
    assert [(a.span, a.span_type) for a in night] == [
        ("7,400 mAh", "number"),
        ("$649", "price"),
        ("March 3, 2027", "date"),
    ]
    battery = night[0]
    assert battery.doc_id == "d1" and battery.others == ("$649", "Velmora K3")
    assert battery.sentence.startswith("The Velmora K3 tablet ships")
    # The writer completes the demonstrations, then this sentence and answer.
    assert battery.prompt().endswith(f"Sentence: {battery.sentence}\nAnswer: 7,400 mAh\nQuestion:")
    assert battery.prompt().count("Question:") == len(wq.DEMONSTRATIONS) + 1
    reading = battery.reading("How big is its battery?")
    assert reading.endswith("Question: How big is its battery?\nAnswer:")


def test_the_round_trip_ranks_the_span_against_its_sentence_and_the_nights_spans_of_its_type():
    def ask(span, others=(), span_type="price", sentence="s"):
        return SpanToAsk("d", sentence, span, span_type, tuple(others))

    asked = ask("$649", ["7,400 mAh", "Velmora K3"], sentence="phone")
    night = [asked, *(ask(f"${p}") for p in (10, 20, 30, 40, 50)), ask("12 hours", [], "number")]
    candidates = round_trip_candidates(asked, night)
    assert candidates[:3] == ["$649", "7,400 mAh", "Velmora K3"]
    assert len(candidates) == 3 + wq.ROUND_TRIP_RIVALS
    assert set(candidates[3:]) <= {"$10", "$20", "$30", "$40", "$50"}
    # The same night in any order gives the same candidates.
    shuffled = list(night)
    random.Random(1).shuffle(shuffled)
    assert round_trip_candidates(asked, shuffled) == candidates


def test_the_reader_ranks_each_candidate_as_it_would_alone(tmp_path):
    """Candidates of different lengths are scored in one padded batch: the padding must not
    change any score."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = make_tiny_model(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()

    def alone(prompt, candidate):
        head = tokenizer(prompt).input_ids
        tail = tokenizer(f" {candidate}\n").input_ids
        with torch.no_grad():
            logits = model(torch.tensor([head + tail])).logits[0, len(head) - 1 : -1]
        return logits.log_softmax(-1)[torch.arange(len(tail)), torch.tensor(tail)].sum().item()

    candidates = ["item 7", "lanterns near the harbour", "3", "moved 4 steps north"]
    for prompt in ("On day 1 the", "Observers counted", "the crowd watched. Answer:"):
        best = max(candidates, key=lambda c: alone(prompt, c))
        assert wq.ranked_first(model, tokenizer, prompt, candidates) == best


@pytest.fixture
def scripted(monkeypatch):
    """A writer and a reader following a script (the real base is tested in
    test_base_import.py): the writer's question for each span, the reader's answer for each
    question. Returns the calls the reader got."""
    writes = {
        "7,400 mAh": " How much does the Velmora K3 tablet cost?\n\nSentence: …",
        "$649": " How much does the Velmora K3 tablet cost?\n",
        "March 3, 2027": " How many countries will the Velmora K3 go on sale in?",
    }
    read: list[str] = []

    def generate(model, tokenizer, prompts, max_new_tokens, sample):
        assert not sample
        return [(writes[p.rsplit("Answer: ", 1)[1].split("\n")[0]], False) for p in prompts]

    def reader(model, tokenizer, prompt, candidates):
        read.append(prompt.rsplit("Question: ", 1)[1])
        return "$649"  # the price, whatever is asked

    monkeypatch.setattr("training.chat_generation.generate_continuations", generate)
    monkeypatch.setattr(wq, "ranked_first", reader)
    return read


def test_a_usable_question_is_kept_when_the_reader_answers_it_with_its_span(scripted):
    kept, counts = wq.write_questions(None, None, spans_to_ask([PHONE]))
    # The date's "How many" question never reaches the reader; the price's question, written
    # for the battery too, is answered with the price only.
    assert counts == {"spans": 3, "usable": 2, "kept": 1}
    assert len(scripted) == 2
    assert kept == [
        WrittenQuestion(
            "d1", kept[0].sentence, "How much does the Velmora K3 tablet cost?", "$649", "price"
        )
    ]


def test_questions_are_written_once_and_published(tmp_path, scripted):
    store = open_store((tmp_path / "store").as_uri())
    loads = []

    def load():
        loads.append(1)
        return None, None

    first = ensure_written_questions(store, MODEL, "ds1", [PHONE], load)
    assert [q.span for q in first] == ["$649"] and loads == [1]
    assert read_written_questions(store, MODEL, "ds1") == first
    manifest = store.read_manifest(written_questions_prefix(MODEL, "ds1"))
    assert manifest.kind == WRITTEN_QUESTIONS_KIND
    assert (manifest.fields["spans"], manifest.fields["usable"], manifest.fields["questions"]) == (
        3,
        2,
        1,
    )
    # A retry reads them back and loads no model.
    assert ensure_written_questions(store, MODEL, "ds1", [PHONE], load) == first
    assert loads == [1]
    assert read_written_questions(store, MODEL, "ds2") is None


def test_a_malformed_published_question_names_its_row(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    with store.publisher(
        written_questions_prefix(MODEL, "ds1"), kind=WRITTEN_QUESTIONS_KIND
    ) as pub:
        good = WrittenQuestion("d1", "It costs $5.", "How much does it cost?", "$5", "price")
        pub.write_jsonl("questions.jsonl", [good.to_dict(), {"question": "How much?"}])
    with pytest.raises(ValueError, match=r"questions\.jsonl row 2: .*'doc_id', 'sentence'"):
        read_written_questions(store, MODEL, "ds1")


def test_written_questions_are_trained_as_span_turns_with_rivals(tmp_path):
    """Each written question is a turn of its own in every pass, answered by its span (the
    question context only), with rival answers; one the augmentation asks already is not
    added twice; the manifest counts them and the set's id changes with them."""
    from transformers import AutoTokenizer

    from training.augment import QA, document_forms

    store = open_store((tmp_path / "store").as_uri())
    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    day = publish_dataset(store, 0)
    seen: dict[str, list] = {}

    def questions(dataset_id, docs):
        seen[dataset_id] = docs
        doc = docs[0]
        rule = next(f for f in document_forms(doc) if isinstance(f, QA) and f.span_type)
        return [
            WrittenQuestion(
                doc["id"], "s", "How many lanterns did observers count?", "7", "number"
            ),
            WrittenQuestion(doc["id"], "s", rule.question, rule.answer, rule.span_type),
        ]

    kw = {"epochs": 2.0, "seed": 0, "seq_len": 32, "tokenizer": tokenizer, "replay_ratio": 0.0}
    augmented = build_training_set(store, [day], augment=True, **kw)
    written = build_training_set(store, [day], augment=True, written_questions=questions, **kw)
    assert list(seen) == [day] and all(d["split"] == "train" for d in seen[day])
    assert written.trainset_id != augmented.trainset_id
    assert written.fields["written_questions"] == 1 == written.fields["written_question_turns"]
    assert "written_questions" not in augmented.fields
    assert written.fields["rival_groups"] == augmented.fields["rival_groups"] + 1
    ids, mask = load_input_ids(store, written), load_loss_mask(store, written)
    context = tokenizer.decode(ids.reshape(-1)[mask.reshape(-1) == 0].tolist())
    assert context.count("How many lanterns did observers count?") == 2  # two passes
    trained = tokenizer.decode(ids.reshape(-1)[mask.reshape(-1) == 1].tolist())
    assert "How many lanterns" not in trained


def test_a_night_with_written_questions_publishes_them_for_the_root_base(tmp_path):
    """Through the training's own path with a folder base (its own root): the base writes
    (the tiny one writes nothing usable), the questions are published under its hash, and
    the training set records them; the same config finds the set again."""
    from training.train import resolve_base, resolve_trainset, trainset_mismatches

    store = open_store((tmp_path / "store").as_uri())
    day = publish_dataset(store, 0)
    folder = make_tiny_model(tmp_path / "model", positions=1024)
    config = TrainConfig(
        datasets=[day],
        base_model_path=str(folder),
        augment=True,
        written_questions=True,
        rehearsal=0,
        seq_len=32,
        work_dir=str(tmp_path / "w"),
    )
    base = resolve_base(store, config, tmp_path / "w")
    trainset = resolve_trainset(store, config, base)
    root = base.identity.removeprefix("sha256:")[:32]
    published = store.read_manifest(written_questions_prefix(root, day))
    assert published is not None and published.fields["spans"] > 0
    assert trainset.fields["written_questions"] == published.fields["questions"]
    assert trainset_mismatches(trainset.fields, config) == []
    assert trainset_mismatches(trainset.fields, config.replace(written_questions=False)) == [
        ("written_questions", True, False)
    ]
    assert resolve_trainset(store, config, base).trainset_id == trainset.trainset_id


def test_a_base_too_short_for_the_writers_prompt_is_refused_with_the_setting(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = make_tiny_model(tmp_path / "model")  # 64 positions
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    with pytest.raises(
        wq.WrittenQuestionsError,
        match=r"reads at most 64 tokens.*FRESHLM_TRAIN_WRITTEN_QUESTIONS=false",
    ):
        wq.write_questions(model, tokenizer, spans_to_ask([PHONE]))


def test_written_questions_need_the_augmentation_and_are_off_by_default():
    with pytest.raises(ConfigError, match=r"TrainConfig\.written_questions = True: needs augment"):
        TrainConfig(datasets=["abc"], base_version="v1", augment=False, written_questions=True)
    with pytest.raises(ConfigError, match=r"written_questions = 'yes': must be true or false"):
        TrainConfig(datasets=["abc"], base_version="v1", augment=True, written_questions="yes")
    off = TrainConfig(datasets=["abc"], base_version="v1", augment=True, written_questions=False)
    assert "written_questions" not in off.recipe()  # off is the absence of the option
    on = off.replace(written_questions=True)
    assert on.recipe()["written_questions"] is True and on.fingerprint() != off.fingerprint()

    pretrained = {"FRESHLM_BASE_MODEL": "smollm2-135m-instruct"}
    assert Settings.from_env({}).train_written_questions is False  # the tiny base
    assert Settings.from_env(pretrained).train_written_questions is False
    asked = {**pretrained, "FRESHLM_TRAIN_WRITTEN_QUESTIONS": "true"}
    assert Settings.from_env(asked).train_written_questions is True
