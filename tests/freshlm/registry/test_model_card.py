"""The model card is a valid Hugging Face card carrying lineage and metrics."""

from __future__ import annotations

import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from freshlm.registry import Lineage, render_model_card


def _card(**overrides):
    args = {
        "version_id": "a" * 32,
        "lineage": Lineage(
            kind="finetune",
            parent_version="b" * 32,
            base_model="c" * 32,
            dataset_ids=("d" * 32,),
            crawl_windows=({"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"},),
            training_config={"lr": 1e-4, "epochs": 1},
            code_revision="abc123",
            evaluation_report="reports/e1",
        ),
        "metrics": {"heldout_perplexity": 23.5, "retention": 0.92, "note": "text"},
        "model": {"parameters": 4_000_000},
    }
    return render_model_card(**{**args, **overrides})


def test_front_matter_is_hub_metadata_with_lineage_and_metrics():
    text = _card()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-generation"
    assert meta["freshlm"]["lineage"]["parent_version"] == "b" * 32
    assert "base_model" not in meta  # a registry id is not a hub name
    card = ModelCard(text)
    _, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert {(r.metric_type, r.metric_value) for r in results} == {
        ("heldout_perplexity", 23.5),
        ("retention", 0.92),
    }
    for needle in ("d" * 32, "2026-11-02T00:00:00Z", "abc123", "reports/e1", "4000000"):
        assert needle in text


def test_rendering_is_deterministic_and_names_hub_bases():
    assert _card() == _card()
    external = _card(lineage=Lineage(kind="external", source="openai-community/gpt2"), metrics={})
    assert yaml.safe_load(external.split("---\n")[1])["base_model"] == "openai-community/gpt2"
    assert "Not evaluated yet" in external
    local = _card(lineage=Lineage(kind="external", source="/models/mine"))
    assert "base_model" not in yaml.safe_load(local.split("---\n")[1])
