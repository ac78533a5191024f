"""The sandbox world's fact probes as items: groups over the days, the old-fact cutoff from the
published base corpus, validation, fetching."""

from __future__ import annotations

import copy

import pytest
import requests

from freshlm.evaluation.items import Item
from freshlm.evaluation.nightly import world_fact_items
from freshlm.evaluation.world_facts import (
    fact_items,
    fetch_world_probes,
    learnable_facts,
    old_fact_cutoff,
    parse_probes,
    wrong_question_controls,
)
from freshlm.store import open_store

DAY1 = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
DAY3 = {"start": "2026-11-04T00:00:00Z", "end": "2026-11-05T00:00:00Z"}
DAY4 = {"start": "2026-11-05T00:00:00Z", "end": "2026-11-06T00:00:00Z"}


def probes_at(world, when: str) -> dict:
    requests.post(world.url + "/_world/clock", json={"now": when}, timeout=5).raise_for_status()
    return fetch_world_probes(world.url, timeout=5)


def groups(items) -> dict[str, str]:
    return {item.doc_id: item.group for item in items}


def test_groups_follow_the_world_clock(world_at_start):
    before = groups(fact_items(probes_at(world_at_start, "day:0")))
    assert before and set(before.values()) == {"old"}
    assert all(key.startswith("old-") for key in before)

    day1 = groups(fact_items(probes_at(world_at_start, "day:1")))
    assert day1["pulse-x2-price"] == "new" and day1["lantern-festival-date"] == "new"
    assert {k for k, g in day1.items() if g == "old"} == set(before)
    assert "stale" not in day1.values()

    day4 = groups(fact_items(probes_at(world_at_start, "day:4")))
    # The price cut supersedes the launch price, the postponement the first date.
    assert day4["pulse-x2-price"] == "stale" and day4["pulse-x2-price-cut"] == "new"
    assert day4["lantern-festival-date"] == "stale"
    assert day4["lantern-festival-postponed"] == "new"
    assert {k for k, g in day4.items() if g == "stale"} == {
        "pulse-x2-price",
        "lantern-festival-date",
    }


def test_fact_items_are_questions_with_shuffled_choices(world_at_start):
    doc = probes_at(world_at_start, "day:4")
    items = fact_items(doc, seed=0)
    by_key = {item.doc_id: item for item in items}
    price = by_key["pulse-x2-price-cut"]
    assert price.kind == "fact" and price.span_type == "fact" and price.source == "world"
    assert (
        price.context
        == "Question: How much does the base model of the Orrin Pulse X2 cost?\nAnswer:"
    )
    assert price.answer == "$599" and sorted(price.choices) == sorted(
        ["$599", "$649", "$549", "$629"]
    )
    assert price.dataset_id is None and price.language == "en"
    assert by_key["pulse-x2-price"].answer == "$649"  # stale: the old answer, to track its pull
    assert fact_items(doc, seed=0) == items
    other = fact_items(doc, seed=1)
    assert [i.id for i in other] == [i.id for i in items]  # same questions, same ids
    assert [i.choices for i in other] != [i.choices for i in items]
    answer_positions = {i.answer_index for i in items}
    assert len(answer_positions) > 1, "the answer must not always be in the same place"


def test_learnable_facts_are_the_new_facts_of_the_crawled_windows(world_at_start):
    doc = probes_at(world_at_start, "day:4")
    day1 = {item.doc_id for item in learnable_facts(doc, [DAY1])}
    assert "pulse-x2-battery" in day1 and "slang-tide-locked" in day1
    assert "pulse-x2-price" not in day1  # stale by day 4: scored as stale, not as new
    assert not any(key.startswith("old-") for key in day1)
    windows = [DAY1, ("2026-11-04T00:00:00Z", DAY3["end"])]  # night 2 was refused
    both = {item.doc_id for item in learnable_facts(doc, windows)}
    assert day1 < both and {"greyling-closure-start", "route-41-fare"} <= both
    assert "pulse-x2-price-cut" not in both
    assert "pulse-x2-price-cut" in {item.doc_id for item in learnable_facts(doc, [DAY4])}
    assert learnable_facts(doc, []) == []
    with pytest.raises(ValueError, match="window #0: start"):
        learnable_facts(doc, [{"start": DAY1["end"], "end": DAY1["start"]}])
    with pytest.raises(ValueError, match="window #1: '2026-11-04' has no timezone"):
        learnable_facts(doc, [DAY1, ("2026-11-04", DAY3["end"])])


def good_doc() -> dict:
    return {
        "now": "2026-11-03T00:00:00Z",
        "probes": [
            {
                "key": "pulse-x2-price",
                "question": "How much does the base model of the Orrin Pulse X2 cost?",
                "answer": "$649",
                "persona": "support",
                "distractors": ["$549", "$699", "$799"],
                "available_at": "2026-11-02T08:00:00Z",
                "supersedes": None,
                "current": True,
                "evidence": [
                    {"ref": "article:orrin-pulse-x2-launch", "url": None, "visible": True}
                ],
            },
            {
                "key": "old-tessford-river",
                "question": "Which river flows through Tessford?",
                "answer": "Ondra",
                "persona": "local",
                "distractors": ["Lisk", "Fenn", "Cray"],
                "available_at": "2025-04-01T00:00:00Z",
                "supersedes": None,
                "current": True,
                "evidence": [{"ref": "article:tessford-a-short-history"}],
            },
        ],
    }


def test_old_facts_are_recognised_by_date_even_without_the_key_prefix():
    doc = good_doc()
    doc["probes"][1]["key"] = "tessford-river"
    cutoff = DAY1["start"]
    assert groups(fact_items(doc, old_cutoff=cutoff)) == {
        "pulse-x2-price": "new",
        "tessford-river": "old",
    }
    assert fact_items(doc["probes"], old_cutoff=cutoff)  # the bare list is accepted too
    # Without a cutoff only the key prefix makes a fact old.
    assert groups(fact_items(doc))["tessford-river"] == "new"
    doc["probes"][1]["key"] = "old-tessford-river"
    assert groups(fact_items(doc))["old-tessford-river"] == "old"


def publish_dataset(store, dataset_id: str, window: dict, role: str | None = None) -> None:
    with store.publisher(f"datasets/{dataset_id}", kind="dataset") as pub:
        pub.write_jsonl("train.jsonl.gz", [])
        pub.write_jsonl("heldout.jsonl.gz", [])
        fields = {"dataset_id": dataset_id, "window": window}
        pub.set_manifest_fields(**fields, **({"role": role} if role else {}))


def test_the_old_fact_cutoff_is_the_end_of_the_base_corpus_window(tmp_path):
    store = open_store(f"file://{tmp_path / 'store'}")
    assert old_fact_cutoff(store) is None  # nothing published: no date marks old facts
    publish_dataset(store, "day3", DAY3)
    publish_dataset(store, "day1", DAY1)
    # Without a base corpus: the start of the earliest published window.
    assert old_fact_cutoff(store) == DAY1["start"]
    base_window = {"start": "2025-01-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}
    publish_dataset(store, "base", base_window, role="base-corpus")
    assert old_fact_cutoff(store) == base_window["end"]


def test_the_base_corpus_cutoff_is_the_world_start_in_the_demo(world_at_start, tmp_path):
    """Facts from before the base corpus's end are old, the rest new: with the demo's base
    corpus ending where the world's days begin, the groups are the world's own."""
    from sandbox.scenario import load_scenario

    store = open_store(f"file://{tmp_path / 'store'}")
    start = load_scenario().start.strftime("%Y-%m-%dT%H:%M:%SZ")
    publish_dataset(store, "base", {"start": "2025-01-01T00:00:00Z", "end": start}, "base-corpus")
    cutoff = old_fact_cutoff(store)
    assert cutoff == start == DAY1["start"]
    doc = probes_at(world_at_start, "day:4")
    by_key = groups(fact_items(doc, old_cutoff=cutoff))
    old = {key for key, group in by_key.items() if group == "old"}
    assert old and all(key.startswith("old-") for key in old)
    assert by_key["pulse-x2-price-cut"] == "new"
    # A later cutoff makes the first days' facts old knowledge too.
    later = groups(fact_items(doc, old_cutoff=DAY3["start"]))
    assert later["pulse-x2-battery"] == "old" and by_key["pulse-x2-battery"] == "new"

    items = world_fact_items(
        world_at_start.url, old_cutoff=cutoff, newest_window_end=DAY1["end"], timeout_s=5
    )
    assert {i.doc_id for i in items if i.group == "new"} == {
        i.doc_id for i in learnable_facts(doc, [DAY1], old_cutoff=cutoff)
    }
    assert {i.doc_id for i in items if i.group == "old"} == old


def test_world_fact_items_are_empty_when_the_world_is_not_reachable(caplog):
    items = world_fact_items(
        "http://127.0.0.1:9", old_cutoff=DAY1["start"], newest_window_end=DAY1["end"], timeout_s=2
    )
    assert items == [] and "world fact probes skipped" in caplog.text


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("probes",), {"a": 1}, "field 'probes' is dict"),
        (("probes", 0, "key"), "", "probe #0: field 'key'"),
        (("probes", 0, "question"), None, "'pulse-x2-price': field 'question'"),
        (("probes", 0, "answer"), 649, "'pulse-x2-price': field 'answer'"),
        (("probes", 0, "distractors"), [], "'pulse-x2-price': field 'distractors'"),
        (("probes", 0, "distractors"), ["$549", 5], "'pulse-x2-price': field 'distractors'"),
        (("probes", 0, "distractors"), ["$649 "], "field 'distractors' contains the answer"),
        (("probes", 0, "available_at"), "yesterday", "field 'available_at'"),
        (("probes", 0, "available_at"), "2026-11-02T08:00:00", "has no timezone"),
        (("probes", 0, "current"), "yes", "'pulse-x2-price': field 'current'"),
        (("probes", 0, "supersedes"), 3, "'pulse-x2-price': field 'supersedes'"),
        (("probes", 0, "evidence"), ["article:x"], "'pulse-x2-price': field 'evidence'"),
        (("probes", 1, "key"), "pulse-x2-price", "'pulse-x2-price': field 'key' appears more"),
        (("probes", 1), "not a probe", "probe #1: expected an object"),
    ],
)
def test_bad_probe_json_names_the_probe_and_field(path, value, message):
    doc = copy.deepcopy(good_doc())
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        parse_probes(doc)


def test_missing_probes_field_and_duplicate_distractors():
    with pytest.raises(ValueError, match="field 'probes' is missing"):
        parse_probes({"now": "2026-11-03T00:00:00Z"})
    doc = good_doc()
    doc["probes"][0]["distractors"] = ["$549", "$549", "$699"]
    (item, _) = fact_items(doc)
    assert sorted(item.choices) == ["$549", "$649", "$699"]


def test_fetch_reports_a_world_that_is_not_answering_probes(world_at_start):
    with pytest.raises(requests.HTTPError):
        fetch_world_probes(world_at_start.url + "/_world/nowhere")
    with pytest.raises(requests.ConnectionError):
        fetch_world_probes("http://127.0.0.1:9", timeout=2)


def _fact(question: str, choices: tuple[str, ...], answer: int = 0, group: str = "new") -> Item:
    return Item.create(
        kind="fact", group=group, span_type="fact", context=f"Question: {question}\nAnswer:",
        choices=choices, answer_index=answer, dataset_id=None, doc_id=question[:12],
        language="en", source="world",
    )  # fmt: skip


def test_wrong_question_controls_keep_the_choices_under_the_next_other_question():
    price = _fact("How much does the Pulse X2 cost?", ("$649", "$599"))
    price_again = _fact("How much does the Pulse X2 cost?", ("$599", "$549"), answer=0)
    slang = _fact("What does tide-locked mean?", ("late", "glued to your phone"), answer=1)
    controls = wrong_question_controls([price, price_again, slang])
    assert len(controls) == 3
    # The same question twice in a row is skipped: a control must ask something else.
    assert [c.context for c in controls] == [slang.context, slang.context, price.context]
    for control, item in zip(controls, [price, price_again, slang], strict=True):
        assert control.choices == item.choices and control.answer == item.answer
        assert (control.kind, control.group, control.doc_id) == (item.kind, item.group, item.doc_id)
        assert control.context != item.context and control.id != item.id


def test_wrong_question_controls_need_two_questions_and_fact_items():
    price = _fact("How much does the Pulse X2 cost?", ("$649", "$599"))
    assert wrong_question_controls([]) == []
    assert wrong_question_controls([price]) == []
    assert wrong_question_controls([price, price]) == []
    cloze = Item.create(
        kind="cloze", group="new", span_type="price", context="The Pulse X2 costs",
        choices=("$649", "$599"), answer_index=0, dataset_id="d1", doc_id="doc", language="en",
        source="tests",
    )  # fmt: skip
    with pytest.raises(ValueError, match="not 'fact'"):
        wrong_question_controls([price, cloze])
