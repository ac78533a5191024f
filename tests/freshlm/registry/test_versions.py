"""Model versions: content-addressed, immutable, with lineage, metrics and a model card."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshlm.registry import (
    Lineage,
    RegistryError,
    VersionNotFound,
    download_version,
    get_version,
    list_versions,
    publish_version,
    version_id_for_dir,
)
from freshlm.registry.versions import MODEL_KIND
from tests.freshlm.registry.conftest import write_fake_model


def test_publish_registers_a_version_with_lineage_metrics_and_card(store, tmp_path):
    folder = write_fake_model(tmp_path / "m", "a")
    lineage = Lineage(
        kind="finetune",
        parent_version="0" * 32,
        base_model="0" * 32,
        dataset_ids=("d" * 32,),
        crawl_windows=({"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"},),
        training_config={"lr": 1e-4},
        code_revision="abc123",
        evaluation_report="reports/r1",
    )
    version, created = publish_version(
        store, folder, lineage=lineage, metrics={"retention": 0.9}, model={"parameters": 10}
    )
    assert created
    assert version.version_id == version_id_for_dir(folder)
    manifest = store.read_manifest(version.prefix, verify=True)
    assert manifest.kind == MODEL_KIND
    assert set(version.files) == {"README.md", "config.json", "model.safetensors", "tokenizer.json"}
    again = get_version(store, version.version_id)
    assert again.lineage == lineage
    assert again.metrics == {"retention": 0.9}
    assert again.model == {"parameters": 10}
    card = store.read_bytes(manifest.key("README.md")).decode()
    assert version.version_id in card and "reports/r1" in card
    assert [v.version_id for v in list_versions(store)] == [version.version_id]


def test_the_version_id_is_the_content_and_a_republish_keeps_the_first(store, tmp_path):
    first, created = publish_version(
        store, write_fake_model(tmp_path / "a", "x"), lineage=Lineage(kind="bootstrap")
    )
    # Same weights elsewhere, a different card and lineage: still the same version, kept as is.
    folder = write_fake_model(tmp_path / "b", "x")
    (folder / "README.md").write_text("someone else's card")
    second, created_again = publish_version(
        store, folder, lineage=Lineage(kind="external", source="elsewhere")
    )
    assert created and not created_again
    assert second.version_id == first.version_id
    assert second.lineage.kind == "bootstrap"
    assert len(list_versions(store)) == 1
    other, _ = publish_version(
        store, write_fake_model(tmp_path / "c", "y"), lineage=Lineage(kind="bootstrap")
    )
    assert other.version_id != first.version_id
    assert len(list_versions(store)) == 2


def test_download_gives_a_verified_copy(store, make_version, tmp_path):
    version = make_version("a")
    dest = download_version(store, version.version_id, tmp_path / "copy")
    assert (dest / "model.safetensors").read_bytes() == b"weights a" * 100
    assert version_id_for_dir(dest) == version.version_id
    store.write_bytes(f"{version.prefix}/model.safetensors", b"tampered")
    with pytest.raises(RegistryError, match="does not match its manifest"):
        download_version(store, version.version_id, tmp_path / "copy2")
    assert not (tmp_path / "copy2" / "model.safetensors").exists()


def test_clear_errors(store, tmp_path):
    with pytest.raises(VersionNotFound, match="no model version"):
        get_version(store, "f" * 32)
    with pytest.raises(RegistryError, match="not a model version id"):
        get_version(store, "../etc")
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "config.json").write_text("{}")
    with pytest.raises(RegistryError, match=r"missing weights .* a tokenizer"):
        publish_version(store, incomplete, lineage=Lineage(kind="bootstrap"))
    with pytest.raises(RegistryError, match="not a folder"):
        publish_version(store, tmp_path / "nope", lineage=Lineage(kind="bootstrap"))
    folder = write_fake_model(tmp_path / "m", "a")
    with pytest.raises(ValueError, match="finite"):
        publish_version(
            store, folder, lineage=Lineage(kind="bootstrap"), metrics={"ppl": float("nan")}
        )
    with pytest.raises(ValueError, match="lineage kind"):
        Lineage(kind="magic")
    with pytest.raises(ValueError, match="parent_version"):
        Lineage(kind="finetune")
    assert list_versions(store) == []


def test_lineage_keeps_unknown_fields_from_newer_writers():
    lineage = Lineage.from_dict({"kind": "bootstrap", "future_field": 1})
    assert lineage.extra == {"future_field": 1}


def test_hidden_files_are_not_part_of_a_version(tmp_path: Path):
    folder = write_fake_model(tmp_path / "m", "a")
    before = version_id_for_dir(folder)
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock").write_text("x")
    (folder / "README.md").write_text("card")
    assert version_id_for_dir(folder) == before
