"""Evaluation items: ids, validation of stored records, and the JSON Lines round trip."""

from __future__ import annotations

import json

import pytest

from freshlm.evaluation.items import Item, item_id, read_items, write_items
from freshlm.store import open_store


def make_item(**changes) -> Item:
    fields = {
        "kind": "cloze",
        "group": "new",
        "span_type": "price",
        "context": "At launch the Pulse X2 costs",
        "choices": ["$549", "$649", "$699"],
        "answer_index": 1,
        "dataset_id": "d" * 32,
        "doc_id": "a" * 32,
        "language": "en",
        "source": "dataset",
    }
    fields.update(changes)
    return Item.create(**fields)


def test_id_is_stable_and_ignores_choice_order_group_and_source():
    item = make_item()
    same = make_item(choices=["$699", "$549", "$649"], answer_index=2, group="old", source="x")
    assert item.id == same.id == item_id("cloze", "price", item.context, item.choices, "$649")
    assert len(item.id) == 24 and int(item.id, 16) >= 0
    assert item.answer == "$649"
    assert make_item(answer_index=0).id != item.id  # another answer is another question
    assert make_item(context="The Pulse X2 costs").id != item.id
    assert item.with_group("old").id == item.id and item.with_group("old").group == "old"


def test_round_trip_through_dict_and_json():
    item = make_item()
    record = json.loads(json.dumps(item.to_dict()))
    assert record["choices"] == ["$549", "$649", "$699"]
    assert Item.from_dict(record) == item
    fact = make_item(kind="fact", span_type="fact", dataset_id=None, doc_id="pulse-x2-price")
    assert Item.from_dict(fact.to_dict()) == fact


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "essay"}, "kind"),
        ({"group": "future"}, "group"),
        ({"span_type": "colour"}, "span_type"),
        ({"span_type": "fact"}, "span_type"),  # a cloze item is never of type fact
        ({"context": "  "}, "context"),
        ({"choices": ["$649"]}, "choices"),
        ({"choices": ["a", "b", "c", "d", "e"]}, "choices"),
        ({"choices": ["$649", " $549"]}, "choices"),
        ({"choices": ["Orrin Labs", "orrin labs"]}, "choices"),
        ({"choices": ["$649", ""]}, "choices"),
        ({"choices": "$649"}, "choices"),
        ({"answer_index": 3}, "answer_index"),
        ({"answer_index": True}, "answer_index"),
        ({"answer_index": "1"}, "answer_index"),
        ({"dataset_id": ""}, "dataset_id"),
        ({"doc_id": 7}, "doc_id"),
        ({"language": ""}, "language"),
        ({"source": None}, "source"),
        ({"id": ""}, "id"),
    ],
)
def test_from_dict_names_the_bad_field(change, field):
    record = {**make_item().to_dict(), **change}
    with pytest.raises(ValueError, match=f"'{field}'"):
        Item.from_dict(record)


def test_from_dict_refuses_missing_and_unknown_fields_and_non_objects():
    record = make_item().to_dict()
    del record["language"]
    with pytest.raises(ValueError, match="missing field 'language'"):
        Item.from_dict(record)
    with pytest.raises(ValueError, match="unknown field 'answer'"):
        Item.from_dict({**make_item().to_dict(), "answer": "$649"})
    with pytest.raises(ValueError, match="expected a JSON object"):
        Item.from_dict(["not", "an", "item"])


def test_write_and_read_items_in_an_artifact(tmp_path):
    store = open_store("file://" + str(tmp_path))
    items = [make_item(), make_item(context="Replacement batteries cost", answer_index=0)]
    with store.publisher("probes/x", kind="probes") as pub:
        assert write_items(pub, "items.jsonl", items) == 2
    manifest = store.read_manifest("probes/x", verify=True)
    assert read_items(store, manifest.key("items.jsonl")) == items


def test_read_items_names_the_record_and_field_of_a_bad_record(tmp_path):
    store = open_store("file://" + str(tmp_path))
    good = make_item().to_dict()
    bad = {**good, "answer_index": 9}
    store.write_jsonl("probes/y/items.jsonl", [good, bad])
    with pytest.raises(ValueError, match=r"items.jsonl record 2: .*'answer_index'"):
        read_items(store, "probes/y/items.jsonl")
