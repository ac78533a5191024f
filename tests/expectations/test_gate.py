"""The gate on synthetic batches: clean passes; each expectation fails on a batch broken in
exactly that way, with its severity; Data Docs are built and PII-safe; overrides need a reason."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from expectations.config import GateConfig, GateContext
from expectations.gate import GateResult, accept_override, run_gate
from freshlm.pii import PLACEHOLDERS, scrub
from tests.expectations import batches as b


def gate(tmp_path: Path, docs: Any, **kwargs: Any) -> GateResult:
    config = kwargs.pop("config", None) or b.config()
    context = kwargs.pop("context", None) or b.context()
    return run_gate(docs, config, context, data_docs_dir=tmp_path / "docs", **kwargs)


def failed(result: GateResult, check: str) -> list[dict[str, Any]]:
    return [f for f in result.failures if f["check"] == check]


def only_failure(result: GateResult, check: str) -> dict[str, Any]:
    """The one failure of ``check``, asserting nothing else failed."""
    assert {f["check"] for f in result.failures} == {check}, result.failures
    [failure] = failed(result, check)
    return failure


# --- clean ---------------------------------------------------------------------------------


def test_a_clean_batch_passes_and_gets_data_docs(tmp_path: Path) -> None:
    result = gate(tmp_path, b.clean_batch())
    assert result.failures == []
    assert (result.passed, result.severity) == (True, "ok")
    assert result.data_docs_index == (tmp_path / "docs" / "index.html").resolve()
    assert result.data_docs_index.is_file()
    stats = result.statistics
    assert stats["documents"] == 60 and stats["quarantined"] == 0
    assert stats["volume_by_source"] == dict.fromkeys(b.SOURCES, 20)
    assert stats["expectations"]["evaluated"] > 50
    assert json.loads(result.to_json())["severity"] == "ok"


def test_what_the_scrubber_leaves_alone_is_not_pii(tmp_path: Path) -> None:
    # Clock times, order numbers, dates and placeholders match naive PII regexes; the
    # scrubber's validators reject them, and so must the gate (same rules).
    docs = b.clean_batch()
    docs[0]["text"] += " Doors at 09:15:00, order 88-41273, 2026-11-02, call <PHONE> or <EMAIL>."
    assert scrub(docs[0]["text"])[1] == {}
    assert gate(tmp_path, docs).failures == []


# --- schema and types ----------------------------------------------------------------------


def test_a_missing_field_is_one_critical_schema_failure(tmp_path: Path) -> None:
    docs = b.clean_batch()
    for d in docs:
        del d["language"]
    result = gate(tmp_path, docs)
    failure = only_failure(result, "schema")
    assert result.severity == "critical" and not result.passed
    assert failure["observed"] == "missing ['language']"
    # Not a pile of "could not be evaluated" lines for the expectations on that column.
    assert not any("could not be evaluated" in f["observed"] for f in result.failures)


def test_an_unknown_field_and_a_wrong_type_fail_the_schema(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[0]["surprise"] = 1
    docs[1]["title"] = 42
    result = gate(tmp_path, docs)
    assert result.severity == "critical"
    observed = {f["column"]: f for f in failed(result, "schema")}
    assert observed[None]["observed"] == "unexpected ['surprise']"
    assert observed["title"]["unexpected_count"] == 1
    assert observed["title"]["examples"] == [f"{docs[1]['id']}: 42"]


def test_a_numeric_field_as_text_fails_the_schema(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[2]["n_chars"] = "812"
    result = gate(tmp_path, docs)
    assert {(f["check"], f["column"], f["severity"]) for f in result.failures} == {
        ("schema", "n_chars", "critical")
    }
    types = [f for f in result.failures if f["expectation"].endswith("in_type_list")]
    assert types[0]["examples"] == [f"{docs[2]['id']}: '812'"]


def test_a_malformed_id_fails_the_schema(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[0]["id"] = "not-hex"
    failure = only_failure(gate(tmp_path, docs), "schema")
    assert failure["column"] == "id" and failure["examples"] == ["not-hex"]


# --- text ----------------------------------------------------------------------------------


def test_blank_text_is_critical_and_named_by_id(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[5]["text"] = " \n\t "
    result = gate(tmp_path, docs)
    failure = failed(result, "text_not_empty")[0]
    assert failure["severity"] == "critical" and result.severity == "critical"
    assert failure["examples"] == [docs[5]["id"]]
    # Blank is also too short for a news article: the length check says so, as a warning.
    assert [f["severity"] for f in failed(result, "text_length")] == ["warning"]


@pytest.mark.parametrize(
    ("index", "kind", "text"),
    [(0, "news", "Too short for an article."), (25, "sns", "word " * 3000)],
)
def test_text_length_outside_the_kind_s_bounds_is_a_warning(
    tmp_path: Path, index: int, kind: str, text: str
) -> None:
    docs = b.clean_batch()
    assert docs[index]["kind"] == kind
    docs[index]["text"] = text
    result = gate(tmp_path, docs)
    failure = only_failure(result, "text_length")
    assert (result.severity, result.passed) == ("warning", True)
    assert f"for kind {kind}" in failure["expected"]
    assert failure["examples"] == [docs[index]["id"]]
    assert text.strip()[:20] not in json.dumps(failure)  # ids, never text


# --- uniqueness, sources, languages --------------------------------------------------------


def test_duplicate_ids_are_critical(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[1]["id"] = docs[0]["id"]
    failure = only_failure(gate(tmp_path, docs), "unique_ids")
    assert failure["severity"] == "critical" and failure["unexpected_count"] == 2
    assert failure["examples"][0] == docs[0]["id"]


def test_duplicate_content_hashes_are_critical(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[1]["content_hash"] = docs[0]["content_hash"]
    failure = only_failure(gate(tmp_path, docs), "unique_content_hashes")
    assert failure["severity"] == "critical"


def test_an_unknown_source_is_critical(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[0]["source"] = "rogue-feed"
    failure = only_failure(gate(tmp_path, docs), "allowed_sources")
    assert failure["severity"] == "critical"
    assert failure["examples"] == [f"{docs[0]['id']}: 'rogue-feed'"]


def test_an_unknown_language_is_a_warning_unless_configured_critical(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[0]["language"] = "fr"
    result = gate(tmp_path, docs)
    assert only_failure(result, "allowed_languages")["severity"] == "warning"
    assert (result.severity, result.passed) == ("warning", True)
    strict = b.config(severities={"allowed_languages": "critical"})
    result = gate(tmp_path, docs, config=strict)
    assert (result.severity, result.passed) == ("critical", False)


# --- residual PII: every type the scrubber knows ------------------------------------------

# type -> (a sentence the scrubber scrubs as that type, the part that must never be shown)
PII_SAMPLES = {
    "url_secret": ("see https://api.example.test/cb?token=s3cr3tvalue42 now", "s3cr3tvalue42"),
    "handle": ("ping @gary_sells@tessford.social about it", "gary_sells@tessford"),
    "email": ("write to gary.sells.tessford@mailbox.example today", "gary.sells.tessford"),
    "ip": ("the server at 192.168.10.23 answered", "192.168.10.23"),
    "credit_card": ("card 4111 1111 1111 1111 was charged", "4111 1111 1111 1111"),
    "bank_account": ("pay into account 110-234-567890 please", "110-234-567890"),
    "phone": ("call +44 20 7946 0958 after six", "7946 0958"),
    "kr_rrn": ("주민등록번호 900101-1234568 확인", "900101-1234568"),
    "us_ssn": ("his SSN is 123-45-6789 on file", "123-45-6789"),
    "uk_nino": ("NI number AB 12 34 56 C on the form", "AB 12 34 56 C"),
}


def test_every_scrubber_pii_type_has_a_sample_here() -> None:
    # A new type in the scrubber needs a sample below, or the gate's check for it is untested.
    assert set(PII_SAMPLES) == set(PLACEHOLDERS)


def test_residual_pii_of_each_type_is_critical_and_never_shown(tmp_path: Path) -> None:
    # One batch, one document per type: each type's failure must name exactly its document.
    docs = b.clean_batch()
    planted = {}
    for i, (pii_type, (sample, _)) in enumerate(sorted(PII_SAMPLES.items())):
        assert pii_type in scrub(sample)[1], f"{sample!r} must be what the scrubber removes"
        docs[i * 3]["text"] = f"{docs[i * 3]['text']} {sample}"
        planted[pii_type] = docs[i * 3]["id"]
    result = gate(tmp_path, docs)
    assert result.severity == "critical"
    found = {f["column"]: f for f in failed(result, "residual_pii")}
    assert set(found) == {f"residual_pii_{t}" for t in PII_SAMPLES}
    assert {f["check"] for f in result.failures} == {"residual_pii"}
    for pii_type, doc_id in planted.items():
        failure = found[f"residual_pii_{pii_type}"]
        assert failure["severity"] == "critical"
        assert (failure["unexpected_count"], failure["examples"]) == (1, [doc_id])
    pages = "".join(p.read_text() for p in (tmp_path / "docs").rglob("*.html"))
    shown = result.to_json() + pages
    for _, secret_part in PII_SAMPLES.values():
        assert secret_part not in shown


def test_pii_left_in_a_title_counts_too(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[3]["title"] = "Contact gary.sells.tessford@mailbox.example"
    assert only_failure(gate(tmp_path, docs), "residual_pii")["column"] == "residual_pii_email"


# --- batch-level rates ---------------------------------------------------------------------


def test_a_toxicity_rate_above_the_threshold_is_critical(tmp_path: Path) -> None:
    docs = b.clean_batch()
    for d in docs[:6]:
        d["toxicity"] = 0.4
    failure = only_failure(gate(tmp_path, docs), "toxicity_rate")
    assert failure["severity"] == "critical"
    assert failure["observed"] == "10.0%" and "<= 2%" in failure["expected"]


def test_a_duplicate_ratio_above_the_threshold_is_critical(tmp_path: Path) -> None:
    docs = b.clean_batch()
    dropped = [b.doc(900 + i, "tessford-social", reason="dedup:near") for i in range(40)]
    result = gate(tmp_path, docs, quarantine=dropped)
    failure = only_failure(result, "duplicate_ratio")
    assert failure["observed"] == "40.0%" and failure["severity"] == "critical"
    assert result.statistics["quarantined_by_reason"] == {"dedup:near": 40}


def test_duplicates_of_published_data_do_not_count_as_a_flood(tmp_path: Path) -> None:
    dropped = [b.doc(900 + i, reason="dedup:exact_published") for i in range(40)]
    assert gate(tmp_path, b.clean_batch(), quarantine=dropped).failures == []


# --- volume against history ----------------------------------------------------------------


def test_a_10x_flood_from_one_source_is_critical(tmp_path: Path) -> None:
    docs = b.clean_batch() + [b.doc(5000 + i, "tessford-social") for i in range(180)]
    history = {s: [19, 20, 21, 20] for s in b.SOURCES}
    result = gate(tmp_path, docs, context=b.context(volume_history=history))
    failure = only_failure(result, "source_flood")
    assert failure["severity"] == "critical"
    assert failure["examples"] == ["tessford-social: 200 docs vs median 20 of 4 batches (10.0x)"]


def test_a_flood_that_curation_dropped_still_counts_as_volume(tmp_path: Path) -> None:
    dropped = [b.doc(5000 + i, "tessford-social", reason="quality:spam") for i in range(180)]
    history = {s: [20, 20, 20] for s in b.SOURCES}
    result = gate(
        tmp_path, b.clean_batch(), quarantine=dropped, context=b.context(volume_history=history)
    )
    assert only_failure(result, "source_flood")["severity"] == "critical"


def test_a_dry_source_is_a_warning(tmp_path: Path) -> None:
    docs = [d for d in b.clean_batch() if d["source"] != "arxiv-cs"]
    history = {s: [20, 20, 20] for s in b.SOURCES}
    result = gate(tmp_path, docs, context=b.context(volume_history=history))
    failure = only_failure(result, "source_dry")
    assert (result.severity, result.passed) == ("warning", True)
    assert failure["examples"] == ["arxiv-cs: 0 docs vs median 20 of 3 batches (0.0x)"]


def test_volume_checks_skip_sources_with_short_history(tmp_path: Path) -> None:
    docs = b.clean_batch() + [b.doc(5000 + i, "tessford-social") for i in range(180)]
    history = {s: [20, 20] for s in b.SOURCES}  # fewer than volume_history_min (3)
    result = gate(tmp_path, docs, context=b.context(volume_history=history))
    assert result.failures == []
    assert result.statistics["sources"]["tessford-social"]["volume_ratio"] is None


# --- dates ---------------------------------------------------------------------------------


def test_published_dates_outside_the_window_are_critical(tmp_path: Path) -> None:
    docs = b.clean_batch()
    # Catch-up of an earlier night's unread items is allowed for 7 days; older is not.
    docs[0]["published_at"] = "2026-10-20T12:00:00Z"
    docs[2]["published_at"] = "2026-10-30T12:00:00Z"
    # The window is [start, end): a document stamped exactly at its end belongs to the next.
    docs[1]["published_at"] = b.WINDOW_END.strftime("%Y-%m-%dT%H:%M:%SZ")
    failure = only_failure(gate(tmp_path, docs), "published_in_window")
    assert failure["severity"] == "critical" and failure["unexpected_count"] == 2
    assert "[2026-10-26T00:00:00Z, 2026-11-03T00:00:00Z)" in failure["expected"]


def test_an_empty_batch_is_critical(tmp_path: Path) -> None:
    result = gate(tmp_path, [])
    assert result.severity == "critical"
    assert "row_count" in {f["check"] for f in result.failures}


# --- Data Docs, inputs, overrides ----------------------------------------------------------


def test_data_docs_name_the_failing_expectation_and_rebuild_in_place(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[1]["id"] = docs[0]["id"]
    result = gate(tmp_path, docs)
    site = tmp_path / "docs"
    assert "freshlm_documents" in result.data_docs_index.read_text()
    [page] = site.glob("validations/freshlm_documents/**/*.html")
    text = " ".join(page.read_text().split())
    assert "[critical] unique_ids: every id once </span>" in text
    assert "2 unexpected values found" in text
    # GX's 3 MB of tutorial images are not copied beside every dataset.
    assert not (site / "static" / "images" / "glossary_scroller.gif").exists()
    # A rerun replaces the site it built...
    again = gate(tmp_path, b.clean_batch())
    assert again.data_docs_index == result.data_docs_index and again.severity == "ok"
    assert len(list(site.glob("validations/freshlm_documents/*"))) == 1
    # ...but never a folder it did not build.
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not built by the gate"):
        run_gate(b.clean_batch(), b.config(), b.context(), data_docs_dir=foreign)


def test_a_jsonl_gz_path_gives_the_same_verdict_as_dicts(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[1]["id"] = docs[0]["id"]
    path = tmp_path / "train.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(d) + "\n" for d in docs)
    from_file = gate(tmp_path, path)
    from_dicts = run_gate(docs, b.config(), b.context(), data_docs_dir=tmp_path / "other")
    assert from_file.failures == from_dicts.failures


def test_accepting_a_failed_batch_needs_a_reason_and_is_recorded(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[1]["id"] = docs[0]["id"]
    result = gate(tmp_path, docs)
    assert not result.passed
    for reason in ("", "   ", None):
        with pytest.raises(ValueError, match="needs a reason"):
            accept_override(result, reason, user="oncall")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user"):
        accept_override(result, "checked by hand", user=" ")
    accepted = accept_override(
        result,
        " duplicate id is a known syndication case ",
        user="mira",
        accepted_at=b.WINDOW_END + timedelta(hours=9),
    )
    assert accepted.passed and accepted.severity == "critical"
    assert accepted.override == {
        "reason": "duplicate id is a known syndication case",
        "user": "mira",
        "accepted_at": "2026-11-03T09:00:00Z",
        "severity": "critical",
    }
    assert GateResult.from_dict(json.loads(accepted.to_json())) == accepted


def test_invalid_config_and_context_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="max_toxicity_rate"):
        GateConfig(max_toxicity_rate=2.0)
    with pytest.raises(ValueError, match="unknown check 'nope'"):
        GateConfig(severities={"nope": "warning"})
    with pytest.raises(ValueError, match="timezone-aware"):
        GateContext(b.WINDOW_START.replace(tzinfo=None), b.WINDOW_END, ["a"])
    with pytest.raises(ValueError, match="is empty"):
        GateContext(b.WINDOW_END, b.WINDOW_START, ["a"])
