"""bench/knowledge.py curates the nights on one machine and trains them on another: the home's
nights.json lists the published datasets, and a home without it (or without a night) says so."""

import json

import pytest

from bench import knowledge
from freshlm.artifacts import DATASETS
from freshlm.store import open_store


def test_curate_only_lists_each_nights_published_dataset_and_its_window(tmp_path, monkeypatch):
    monkeypatch.setenv("FRESHLM_HOME", str(tmp_path))  # main() sets it; restored afterwards
    assert knowledge.main(["--curate-only", "--home", str(tmp_path), "--nights", "1"]) == 0

    [(dataset_id, window)] = knowledge.read_curated(tmp_path, 1)
    manifest = open_store((tmp_path / "store").as_uri()).read_manifest(f"{DATASETS}/{dataset_id}")
    assert manifest is not None
    assert window == {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
    assert not (tmp_path / "store" / "models").exists()  # no base model: that is the other side


def test_a_home_that_was_not_curated_names_the_missing_file(tmp_path):
    with pytest.raises(SystemExit, match=r"nights\.json is missing; run --curate-only"):
        knowledge.read_curated(tmp_path, 3)


def test_a_home_curated_for_fewer_nights_says_which_were_asked(tmp_path):
    (tmp_path / knowledge.NIGHTS_FILE).write_text(
        json.dumps([{"night": 1, "dataset_id": "a" * 32, "window": {}}])
    )
    with pytest.raises(SystemExit, match=r"does not list nights 1-3"):
        knowledge.read_curated(tmp_path, 3)


def test_curated_needs_a_home(capsys):
    with pytest.raises(SystemExit):
        knowledge.main(["--curated"])
    assert "--curate-only and --curated need --home" in capsys.readouterr().err
