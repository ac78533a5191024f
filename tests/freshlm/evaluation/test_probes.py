"""Knowledge probes: span extraction, cloze items, published probe sets, retention sets."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import Counter

import pytest

from freshlm.documents import document_problems
from freshlm.evaluation import probes
from freshlm.evaluation.probes import (
    ProbeError,
    build_cloze_items,
    build_dataset_probes,
    document_text,
    probe_sets_for,
)
from freshlm.spans import extract_spans
from freshlm.store import open_store
from sandbox.records import day_records
from sandbox.scenario import load_scenario

# --- span extraction ---------------------------------------------------------------------------


def spans_of(text: str, language: str = "en") -> list[tuple[str, str]]:
    return [(s.type, s.text) for s in extract_spans(text, language)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The base model costs $499 in shops.", ("price", "$499")),
        ("In Haeon it sells for €1,299 at launch.", ("price", "€1,299")),
        ("He paid 499 dollars for it.", ("price", "499 dollars")),
        ("The grant is worth $4.8 million over five years.", ("price", "$4.8 million")),
        ("중고로 15만원 에 팝니다", ("price", "15만원")),
        ("가격은 ₩899,000 입니다", ("price", "₩899,000")),
        ("The old Pulse had 4,300 mAh inside.", ("number", "4,300 mAh")),
        ("The battery lasted 12 hours in our test.", ("number", "12 hours")),
        ("Replay cut forgetting by 30% at equal compute.", ("number", "30%")),
        ("Unemployment stands at 7.4 per cent here.", ("number", "7.4 per cent")),
        ("The plant will hire 300 people this year.", ("number", "300 people")),
        ("It comes with a 30-month warranty.", ("number", "30-month")),
        ("배터리 5,200mAh래", ("number", "5,200mAh")),
        ("It goes on sale November 14 in stores.", ("date", "November 14")),
        ("The firmware ships on 2026-11-14 worldwide.", ("date", "2026-11-14")),
        ("The bridge reopens on 14 Nov after repairs.", ("date", "14 Nov")),
        ("The bridge opened in 1962 to traffic.", ("date", "1962")),
        ("Doors open at 17:00 on the day.", ("date", "17:00")),
        ("해온에도 11월 13일 에 나온다", ("date", "11월 13일")),
        ("Shares in Orrin Labs rose on Monday.", ("entity", "Orrin Labs")),
        ("Lanterns float under The Greyling Bridge at night.", ("entity", "Greyling Bridge")),
        ("said an analyst at Harrow & Finch today.", ("entity", "Harrow & Finch")),
        ("New bus Route 41 starts soon.", ("entity", "Route 41")),
        ("I am stealing 'tide-locked' for my class.", ("term", "'tide-locked'")),
        ("Everyone on the tram was tide-locked again.", ("term", "tide-locked")),
        ("We propose TideReplay for continual training.", ("term", "TideReplay")),
        ("Do you know what 파도잠 means?", ("term", "파도잠")),
    ],
)
def test_extract_spans_finds_each_type(text, expected):
    language = "ko" if any("\uac00" <= c <= "\ud7a3" for c in text.split()[0]) else "en"
    assert expected in spans_of(text, language)


@pytest.mark.parametrize(
    "text",
    [
        "Email <EMAIL> or call <PHONE> about the Pulse X2 at https://orrin.example/x2 #OrrinPulse",
        "LOST DOG near the river, brown terrier.",
        "Yesterday it rained. Tomorrow it will not.",
        "Order 88-41273 arrived with 5 new cables.",
        "Sparse Probe Editing: Locating and Updating Time-Sensitive Facts in Small Transformers",
        "You need a two-day battery and a well-known brand.",
    ],
)
def test_extract_spans_ignores_what_is_not_salient(text):
    found = spans_of(text)
    assert not [s for s in found if s[0] == "entity" and s[1] not in ("Pulse X2",)]
    assert not [s for s in found if s[0] in ("number", "term")]


def test_spans_do_not_overlap_and_the_most_specific_reading_wins():
    text = "On November 13, 2026 the Pulse X2 costs $2,023 and has 5,200 mAh."
    found = extract_spans(text, "en")
    assert [(s.type, s.text) for s in found] == [
        ("date", "November 13, 2026"),
        ("entity", "Pulse X2"),
        ("price", "$2,023"),
        ("number", "5,200 mAh"),
    ]
    assert all(text[s.start : s.end] == s.text for s in found)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))


def test_hangul_words_are_terms_only_outside_korean_text():
    assert ("term", "파도잠") in spans_of("what 파도잠 means", "en")
    assert not [s for s in spans_of("아침 트램에서 또 파도잠 했다", "ko") if s[0] == "term"]
    assert ("term", "'파도잠'") in spans_of("요즘 유행어 '파도잠' 들어봤어?", "ko")


def test_a_sentence_initial_capital_is_not_a_name_unless_used_mid_sentence():
    assert ("entity", "Jiwoo Kim") in spans_of("Organiser Jiwoo Kim said the week went well.")
    text = "Hallam Street Library opens late. Friends of Hallam Street Library helped."
    assert ("entity", "Hallam Street Library") in spans_of(text)


# --- cloze items -------------------------------------------------------------------------------

DOCS = [
    {
        "id": "launch",
        "title": "Orrin unveils the Pulse X2",
        "language": "en",
        "text": "Orrin Labs unveiled its new phone on Monday in Tessford. The base model of the "
        "phone costs $649 in the shops, and its battery holds 5,200 mAh when full. It goes on "
        "sale on November 13 in every store of the Vell Valley.",
    },
    {
        "id": "buds",
        "title": "Hush Buds 2 arrive",
        "language": "en",
        "text": "Orrin also showed new earbuds at the same launch. The earbuds from the company "
        "will cost $129 when they ship, with a case that holds 520 mAh of charge. Stores in "
        "Haeon get them on November 20 this year.",
    },
    {
        "id": "rival",
        "title": "Sorim answers",
        "language": "en",
        "text": "Sorim Electronics cut the price of its own flagship phone this week. The rival "
        "phone from Haeon now costs $599 at most shops, and its battery holds 4,800 mAh of "
        "charge. The cut takes effect on November 9 across the region.",
    },
    {
        "id": "bridge",
        "title": "Bridge works",
        "language": "en",
        "text": "The city said the old crossing over the river will close for repairs. Drivers "
        "who cross the Ondra every day should use the Copperline Bridge instead, while walkers "
        "take the free ferry from the Wharf. Works end on December 5 if the weather holds.",
    },
]


def reference_values(docs, span_type):
    """Every span value of ``span_type`` per document id."""
    return {
        d["id"]: {s.value for s in extract_spans(document_text(d), d["language"])}
        for d in docs
        if any(s.type == span_type for s in extract_spans(document_text(d), d["language"]))
    }


def test_cloze_items_rank_the_true_span_against_same_type_spans_of_other_documents():
    items = build_cloze_items(DOCS, group="new", dataset_id="ds", source="dataset", seed=0)
    assert items, "four documents with prices, numbers and dates must give items"
    texts = {d["id"]: document_text(d) for d in DOCS}
    spans_by_doc = {
        d["id"]: {(s.type, s.value) for s in extract_spans(texts[d["id"]], "en")} for d in DOCS
    }
    for item in items:
        assert item.kind == "cloze" and item.group == "new" and item.dataset_id == "ds"
        assert 2 <= len(item.choices) <= 4
        # The context and the answer are the document's own text, joined by one space.
        assert f"{item.context} {item.answer}" in texts[item.doc_id]
        assert len(item.context.split()) >= probes.MIN_CONTEXT_WORDS
        for i, choice in enumerate(item.choices):
            if i == item.answer_index:
                continue
            assert choice.casefold() != item.answer.casefold()
            assert choice.casefold() not in texts[item.doc_id].casefold()
            owners = [d for d, spans in spans_by_doc.items() if (item.span_type, choice) in spans]
            assert owners and item.doc_id not in owners, (item, choice)
    prices = [i for i in items if i.span_type == "price"]
    assert prices and all(c.startswith("$") for i in prices for c in i.choices)


def test_cloze_items_are_deterministic_for_a_seed_whatever_the_document_order():
    kwargs = {"group": "new", "dataset_id": "ds", "source": "dataset"}
    first = build_cloze_items(DOCS, seed=3, **kwargs)
    shuffled = DOCS[:]
    random.Random(1).shuffle(shuffled)
    assert build_cloze_items(shuffled, seed=3, **kwargs) == first
    other = build_cloze_items(DOCS, seed=4, **kwargs)
    assert other != first
    # Another seed reorders choices and picks, but every item stays well formed.
    assert {i.doc_id for i in other} <= {d["id"] for d in DOCS}


def test_cloze_limits_and_a_span_without_distractors_is_skipped():
    kwargs = {"group": "new", "dataset_id": None, "source": "dataset", "seed": 0}
    assert build_cloze_items(DOCS[:1], **kwargs) == []  # no other document: no distractor
    assert len(build_cloze_items(DOCS, max_items=2, **kwargs)) == 2
    per_doc = Counter(i.doc_id for i in build_cloze_items(DOCS, max_per_doc=1, **kwargs))
    assert per_doc and max(per_doc.values()) == 1
    short = build_cloze_items(DOCS, context_chars=60, **kwargs)
    assert short and all(len(i.context) <= 60 for i in short)


def test_cloze_refuses_documents_without_the_required_fields():
    with pytest.raises(ProbeError, match="document 'x': field 'text'"):
        build_cloze_items(
            [{"id": "x", "language": "en"}], group="new", dataset_id=None, source="dataset"
        )
    with pytest.raises(ProbeError, match="document 1: expected an object"):
        build_cloze_items([DOCS[0], "text"], group="new", dataset_id=None, source="dataset")


# --- published probe sets ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenario():
    return load_scenario()


def curated(record: dict) -> dict:
    """A scenario record in the curated document schema (freshlm.documents)."""
    text = record["text"]
    doc = {
        **record,
        "language_score": 0.99,
        "content_hash": hashlib.sha256(text.encode()).hexdigest(),
        "n_chars": len(text),
        "n_words": len(text.split()),
        "pii": {},
        "toxicity": 0.0,
        "split": "train",
        "shard": f"file:///raw/{record['source']}",
    }
    assert document_problems(doc) == []
    return doc


def publish_day(store, scenario, number: int) -> str:
    """Publish scenario day ``number`` as ``datasets/<id>`` with the fields curation writes."""
    day = scenario.days[number - 1].date
    docs = [curated(r) for r in day_records(scenario, day)]
    dataset_id = hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest()[:32]
    with store.publisher(f"datasets/{dataset_id}", kind="dataset") as pub:
        pub.write_jsonl("train.jsonl.gz", docs)
        pub.write_jsonl("heldout.jsonl.gz", [])
        pub.set_manifest_fields(
            dataset_id=dataset_id,
            window={"start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z"},
            counts={"documents": len(docs), "train": len(docs), "heldout": 0},
        )
    return dataset_id


def publish_base_corpus(store, scenario) -> str:
    """The scenario archive as a published base corpus (``role: base-corpus``), its window
    ending where day 1 begins."""
    docs = [
        curated(
            {
                "id": hashlib.sha256(a.slug.encode()).hexdigest()[:32],
                "source": "world-archive",
                "kind": "news",
                "url": f"archive:{a.slug}",
                "title": a.title,
                "text": "\n".join([a.summary, *a.paragraphs]),
                "language": a.language,
                "published_at": a.published_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "fetched_at": a.published_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "author": a.author,
                "meta": {"slug": a.slug},
            }
        )
        for a in scenario.archive[:60]
    ]
    dataset_id = "base" + "0" * 28
    with store.publisher(f"datasets/{dataset_id}", kind="dataset") as pub:
        pub.write_jsonl("train.jsonl.gz", docs[6:])
        pub.write_jsonl("heldout.jsonl.gz", docs[:6])
        pub.set_manifest_fields(
            dataset_id=dataset_id,
            role="base-corpus",
            window={"start": "2020-01-01T00:00:00Z", "end": f"{scenario.days[0].date}T00:00:00Z"},
        )
    return dataset_id


@pytest.fixture
def store(tmp_path):
    return open_store("file://" + str(tmp_path / "store"))


def test_dataset_probes_are_published_once_and_read_back(store, scenario):
    dataset_id = publish_day(store, scenario, 1)
    built = build_dataset_probes(store, dataset_id, seed=0)
    assert not built.already_published and built.items
    manifest = store.read_manifest(f"probes/{dataset_id}", verify=True)
    assert manifest.kind == "probes"
    fields = manifest.fields
    assert fields["dataset_id"] == dataset_id and fields["seed"] == 0
    assert fields["built_from"] == "train" and fields["window"]["start"] == "2026-11-02T00:00:00Z"
    assert fields["counts"] == built.counts and sum(built.counts.values()) == len(built.items)
    # Day 1 is rich enough for every kind of span.
    assert set(built.counts) == {"price", "number", "date", "entity", "term"}
    assert {i.group for i in built.items} == {"new"}
    assert {i.source for i in built.items} == {"dataset"}
    assert {i.dataset_id for i in built.items} == {dataset_id}

    manifest_bytes = store.read_bytes(f"probes/{dataset_id}/_MANIFEST.json")
    again = build_dataset_probes(store, dataset_id, seed=7, max_items=3)
    assert again.already_published and again.items == built.items and again.seed == 0
    assert store.read_bytes(f"probes/{dataset_id}/_MANIFEST.json") == manifest_bytes


def test_dataset_probes_need_a_published_dataset(store):
    with pytest.raises(ProbeError, match="is not published"):
        build_dataset_probes(store, "0" * 32)


def test_probe_sets_carry_earlier_datasets_forward_as_retention(store, scenario):
    base = publish_base_corpus(store, scenario)
    day1 = publish_day(store, scenario, 1)
    day3 = publish_day(store, scenario, 3)
    new, old = probe_sets_for(store, [day1, day3], seed=0, max_new=50, max_old=40)
    assert 0 < len(new) <= 50
    assert {i.dataset_id for i in new} == {day3} and {i.group for i in new} == {"new"}
    assert {i.group for i in old} == {"old"}
    by_source = Counter(i.dataset_id for i in old)
    assert by_source == {base: 20, day1: 20}  # balanced across the earlier datasets
    assert not {i.id for i in new} & {i.id for i in old}
    assert len({i.id for i in old}) == len(old)
    # Day 1's probes were published on the way, so tomorrow's retention set is the same.
    assert store.read_manifest(f"probes/{day1}") is not None
    assert probe_sets_for(store, [day1, day3], seed=0, max_new=50, max_old=40) == (new, old)

    # A short lineage still carries every dataset published before the newest one's window.
    assert probe_sets_for(store, [day3], seed=0, max_new=50, max_old=40) == (new, old)

    # The first night: the base corpus is the only earlier dataset, so all old items come
    # from the base model's own pretraining text.
    first_night_new, first_night_old = probe_sets_for(store, [day1], seed=0, max_old=10)
    assert {i.dataset_id for i in first_night_new} == {day1}
    assert {i.dataset_id for i in first_night_old} == {base} and len(first_night_old) == 10


def test_without_a_base_corpus_the_first_night_has_no_retention_probes(store, scenario):
    day1 = publish_day(store, scenario, 1)
    new, old = probe_sets_for(store, [day1], seed=0, max_new=20, max_old=10)
    assert len(new) == 20 and old == []
    assert probes.earlier_datasets(store, [day1]) == []


def test_probe_sets_refuse_an_unpublished_lineage(store, scenario):
    day1 = publish_day(store, scenario, 1)
    with pytest.raises(ProbeError, match="f" * 32):
        probe_sets_for(store, ["f" * 32, day1])
    with pytest.raises(ProbeError, match="at least one dataset"):
        probe_sets_for(store, [])


def test_balanced_quotas_fill_from_the_sources_that_have_more():
    assert probes._balanced_quotas([100, 3, 100], 30) == [14, 3, 13]
    assert probes._balanced_quotas([5, 5], 30) == [5, 5]
    assert probes._balanced_quotas([5, 0], None) == [5, 0]
    assert probes._balanced_quotas([], 10) == []
