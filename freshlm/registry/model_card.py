"""Hugging Face model cards for model versions: YAML front matter, lineage and metrics.

The card is the version's ``README.md``, so the Hugging Face hub, ``huggingface_hub.ModelCard``
and a person browsing the store all read the same description. The front matter follows the
hub's model card metadata (``library_name``, ``pipeline_tag``, ``language``, ``tags``,
``base_model`` for hub models, ``model-index`` with the numeric metrics); FreshLM's own record
sits under a ``freshlm`` key (version id and lineage), which the hub ignores.

Rendering is deterministic: the same inputs give byte-identical cards (no dates), so
republishing a version is idempotent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from freshlm.registry.versions import Lineage

_KIND_TEXT = {
    "bootstrap": "bootstrapped by FreshLM: a small causal LM with a byte-level BPE tokenizer, "
    "both trained from scratch on the sandbox world's background text",
    "external": "an existing Hugging Face causal LM, copied in as a base model",
    "finetune": "fine-tuned by FreshLM's nightly loop on freshly crawled data",
}


def _is_hub_name(name: str | None) -> bool:
    """``owner/model`` style names the hub would accept as ``base_model`` (not local paths)."""
    if not name or name.startswith(("/", ".", "~")) or "\\" in name:
        return False
    parts = name.split("/")
    return len(parts) <= 2 and all(parts)


def _numeric(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _cell(value: Any) -> str:
    if value is None or value == "" or value == () or value == []:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(f"`{v}`" if isinstance(v, str) else str(v) for v in value)
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if isinstance(value, str) else text


def front_matter(
    *,
    version_id: str,
    lineage: Lineage,
    metrics: Mapping[str, Any],
    model: Mapping[str, Any],
    languages: tuple[str, ...] = ("en", "ko"),
) -> dict[str, Any]:
    """The card's metadata as a dict (what goes between the ``---`` lines)."""
    meta: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "language": list(languages),
        "license": "other",
        "tags": ["freshlm", "causal-lm", lineage.kind],
    }
    if lineage.kind == "external" and _is_hub_name(lineage.source):
        meta["base_model"] = lineage.source
    scores = [
        {"type": name, "name": name, "value": float(value)}
        for name, value in sorted(metrics.items())
        if _numeric(value)
    ]
    if scores:
        meta["model-index"] = [
            {
                "name": f"freshlm-{version_id}",
                "results": [
                    {
                        "task": {"type": "text-generation", "name": "Text Generation"},
                        "dataset": {"type": "freshlm", "name": "FreshLM evaluation"},
                        "metrics": scores,
                    }
                ],
            }
        ]
    meta["freshlm"] = {"version_id": version_id, "lineage": lineage.to_dict(), "model": dict(model)}
    return meta


def render_model_card(
    *,
    version_id: str,
    lineage: Lineage,
    metrics: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    description: str | None = None,
    languages: tuple[str, ...] = ("en", "ko"),
    footprint: Mapping[str, Any] | None = None,
    forgotten: list[Mapping[str, Any]] | None = None,
) -> str:
    """The model card (Markdown with YAML front matter) of one version. ``footprint``: the
    training run's cost and energy (:mod:`freshlm.footprint`); ``forgotten``: the forget
    requests whose data this version was trained on (:mod:`freshlm.registry.forgotten`)."""
    import yaml  # a light import, but only the publisher needs it

    from freshlm.footprint import card_lines

    metrics = dict(metrics or {})
    model = dict(model or {})
    meta = front_matter(
        version_id=version_id, lineage=lineage, metrics=metrics, model=model, languages=languages
    )
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    lines = [
        "---",
        header.rstrip("\n"),
        "---",
        "",
        f"# FreshLM model version `{version_id}`",
        "",
        description or f"This version is {_KIND_TEXT[lineage.kind]}.",
        "",
        *forgotten_banner(forgotten).splitlines(),
        "## Lineage",
        "",
        "| field | value |",
        "|---|---|",
        f"| kind | {_cell(lineage.kind)} |",
        f"| parent version | {_cell(lineage.parent_version)} |",
        f"| base model | {_cell(lineage.base_model)} |",
        f"| source | {_cell(lineage.source)} |",
        f"| datasets | {_cell(list(lineage.dataset_ids))} |",
        "| crawl windows | "
        + _cell([f"{w.get('start')} – {w.get('end')}" for w in lineage.crawl_windows])
        + " |",
        f"| code revision | {_cell(lineage.code_revision)} |",
        f"| evaluation report | {_cell(lineage.evaluation_report)} |",
        "",
    ]
    if lineage.training_config:
        lines += ["Training configuration:", "", "```json"]
        lines += [json.dumps(dict(lineage.training_config), indent=2, sort_keys=True), "```", ""]
    if lineage.extra:
        lines += ["Provenance:", "", "```json"]
        lines += [json.dumps(dict(lineage.extra), indent=2, sort_keys=True), "```", ""]
    lines += ["## Metrics", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_cell(value)} |" for name, value in sorted(metrics.items())]
    else:
        lines.append("Not evaluated yet: see the registry's audit log for promotion metrics.")
    lines.append("")
    lines += card_lines(footprint)
    if model:
        lines += ["## Model", "", "| property | value |", "|---|---|"]
        lines += [f"| {name} | {_cell(value)} |" for name, value in sorted(model.items())]
        lines.append("")
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "from freshlm.registry import download_version",
        "from freshlm.store import open_store",
        "",
        f'path = download_version(open_store(), "{version_id}", "model-{version_id[:8]}")',
        "model = AutoModelForCausalLM.from_pretrained(path)",
        "tokenizer = AutoTokenizer.from_pretrained(path)",
        "```",
        "",
    ]
    return "\n".join(lines)


BANNER_START = "<!-- freshlm:forgotten-data -->"
BANNER_END = "<!-- /freshlm:forgotten-data -->"


def forgotten_banner(forgotten: list[Mapping[str, Any]] | None) -> str:
    """The card's notice that this version was trained on data later forgotten on request
    (empty when it was not), between markers so a later request can rewrite it."""
    if not forgotten:
        return ""
    lines = [
        BANNER_START,
        "> **Trained on forgotten data.** Data this version was trained on was removed on",
        "> request after it was trained; retrain without it before serving it again.",
        ">",
    ]
    for request in forgotten:
        lines.append(
            f"> - forget request `{request.get('request_id')}` ({request.get('requested_at')}):"
            f" {_cell(request.get('reason'))}"
        )
    return "\n".join([*lines, BANNER_END, ""])


def with_forgotten_banner(card: str, forgotten: list[Mapping[str, Any]]) -> str:
    """``card`` with its forgotten-data notice replaced by one for ``forgotten`` (placed after
    the title when the card had none)."""
    banner = forgotten_banner(forgotten)
    if BANNER_START in card and BANNER_END in card:
        head, rest = card.split(BANNER_START, 1)
        tail = rest.split(BANNER_END, 1)[1].lstrip("\n")
        return head + banner + "\n" + tail
    lines = card.split("\n")
    title = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if title is None:
        return banner + "\n" + card
    return "\n".join([*lines[: title + 1], "", banner.rstrip("\n"), *lines[title + 1 :]])
