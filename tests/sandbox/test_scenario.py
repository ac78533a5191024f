"""The packaged scenario loads, validates and unfolds day by day; errors name file and item."""

from __future__ import annotations

import itertools
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from sandbox.clock import parse_when
from sandbox.scenario import (
    DEFAULT_DIR,
    ScenarioError,
    article_text,
    evidence_text,
    load_scenario,
)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
KOREAN_MOBILE = re.compile(r"\b010-\d{4}-\d{4}\b")


@pytest.fixture(scope="module")
def world():
    return load_scenario()


def end_of(day: int):
    return parse_when(f"day:{day}")


def test_packaged_scenario_loads_and_is_cached_and_deterministic(world) -> None:
    assert load_scenario() is world
    assert load_scenario(DEFAULT_DIR) == world  # a fresh load gives an equal scenario
    assert [d.number for d in world.days] == [1, 2, 3, 4]
    assert world.start == datetime(2026, 11, 2, tzinfo=UTC)
    assert [d.number for d in world.days if d.bad_batch] == [2]


def test_content_appears_day_by_day(world) -> None:
    counts = [
        (
            len(world.posts_at(t)),
            len(world.articles_at(t)) - len(world.archive),
            len(world.papers_at(t)),
        )
        for t in [world.start, *(end_of(n) for n in range(1, 5))]
    ]
    assert counts[0] == (0, 0, 0)
    for before, after in itertools.pairwise(counts):
        assert after[1] > before[1] and after[2] > before[2]
    # Posts grow every day, except that day 3's deletion is outweighed by new posts.
    assert counts[1][0] < counts[2][0] and counts[3][0] > counts[1][0]
    day2_keys = {p.key for p in world.posts if world.day_of(p.created_at).number == 2}
    assert not day2_keys & {p.key for p in world.posts_at(end_of(1))}


def test_good_days_have_the_promised_volume(world) -> None:
    for n in (1, 3, 4):
        day = world.days[n - 1]
        articles = [a for a in world.articles if a.published_at.date() == day.date]
        posts = [p for p in world.posts if p.created_at.date() == day.date]
        papers = [p for p in world.papers if p.published_at.date() == day.date]
        assert 8 <= len(articles) <= 12 and 25 <= len(posts) <= 50 and 2 <= len(papers) <= 4
        assert sum(len(a.paragraphs) >= 4 for a in articles) >= 3  # the rest: short news items
        assert {"en", "ko"} <= {p.language for p in posts}


def test_edit_delete_and_consent_cases_exist(world) -> None:
    edited = world.post("d1-mira-launch")
    assert edited.text_at(edited.edited_at - timedelta(seconds=1)) != edited.text_at(end_of(1))
    assert "$649" in edited.text_at(end_of(1))
    deleted = world.post("d1-jiwoo-deleted")
    assert deleted in world.posts_at(end_of(1)) and deleted not in world.posts_at(end_of(3))
    assert any(not a.indexable for a in world.accounts)
    assert any(a.noindex for a in world.accounts)
    assert any(a.domain for a in world.accounts)
    assert any(p.spoiler_text and p.sensitive for p in world.posts)
    assert any(p.reblog_of for p in world.posts) and any(p.in_reply_to for p in world.posts)


def test_bad_batch_is_day_two_only(world) -> None:
    by_day = {
        n: [p for p in world.posts if world.day_of(p.created_at).number == n] for n in range(1, 5)
    }
    spam = [p for p in by_day[2] if p.key.startswith("spam-")]
    assert len(spam) >= 60
    assert not any(p.key.startswith("spam-") for n in (1, 3, 4) for p in by_day[n])
    # Near-duplicates: many spam posts share all but a few words with another one.
    words = [set(p.text.split()) for p in spam]
    close = sum(
        1
        for i, a in enumerate(words)
        if any(len(a & b) / len(a | b) >= 0.6 for j, b in enumerate(words) if j != i)
    )
    assert close >= 50
    day2_text = "\n".join(p.text for p in by_day[2])
    assert len(EMAIL.findall(day2_text)) >= 8
    assert len(KOREAN_MOBILE.findall(day2_text)) >= 4
    assert "+44 " in day2_text
    for n in (1, 3, 4):
        assert not KOREAN_MOBILE.search("\n".join(p.text for p in by_day[n]))
    malformed = [f for f in world.feeds if f.malformed_on_days]
    assert malformed and all(f.malformed_on_days == (2,) for f in malformed)


def test_facts_carry_probes_with_answers_in_evidence(world) -> None:
    assert 20 <= len([f for f in world.facts if f.available_at >= world.start]) <= 35
    assert {f.persona for f in world.facts} == {"support", "translation", "local", "research"}
    for fact in world.facts:
        assert any(
            fact.answer.casefold() in evidence_text(world, r).casefold() for r in fact.evidence
        )
        assert len(fact.distractors) == 3 and fact.answer not in fact.distractors
        day = world.day_of(fact.available_at)
        assert day is None or not day.bad_batch
    old = [f for f in world.facts if f.available_at < world.start]
    assert len(old) >= 5  # retention probes


def test_changed_facts_supersede_old_ones(world) -> None:
    current = {f.key for f in world.current_facts_at(end_of(4))}
    assert "pulse-x2-price-cut" in current and "pulse-x2-price" not in current
    assert "pulse-x2-price" in {f.key for f in world.current_facts_at(end_of(3))}
    assert world.facts_at(world.start) == [f for f in world.facts if f.available_at < world.start]


def test_archive_is_large_dated_before_day_one_and_partly_korean(world) -> None:
    text = [article_text(a) for a in world.archive]
    assert sum(len(t.encode()) for t in text) >= 300 * 1024
    assert all(a.published_at < world.start for a in world.archive)
    assert sum(len(article_text(a).encode()) for a in world.archive if a.language == "ko") >= 2048
    assert not any("{" in t or "}" in t for t in text)  # no unfilled template slots
    assert len({a.slug for a in world.archive}) == len(world.archive)
    sections = {a.section for a in world.archive}
    assert {"tech", "business", "local", "culture"} <= sections


# --- loader errors: small broken copies of the scenario ------------------------------------


@pytest.fixture
def copy(tmp_path: Path):
    """A copy of the packaged scenario without the generated archive (fast to load)."""
    folder = tmp_path / "scenario"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("README.md"))
    archive = yaml.safe_load((folder / "archive.yaml").read_text(encoding="utf-8"))
    archive.pop("generate")
    dump(folder / "archive.yaml", archive)
    return folder


def dump(path: Path, data) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def edit(folder: Path, name: str, change) -> None:
    data = yaml.safe_load((folder / name).read_text(encoding="utf-8"))
    change(data)
    dump(folder / name, data)


def post_in(data, key):
    return next(p for p in data["posts"] if p["key"] == key)


def test_copy_without_generated_archive_loads(copy: Path) -> None:
    assert len(load_scenario(copy).archive) < len(load_scenario().archive)


def test_unknown_account_names_file_and_post(copy: Path) -> None:
    edit(copy, "day2.yaml", lambda d: post_in(d, "d2-ember-open").update(account="x"))
    with pytest.raises(
        ScenarioError, match=r"^day2\.yaml: post 'd2-ember-open': unknown account 'x'"
    ):
        load_scenario(copy)


def test_spam_flood_bot_must_exist(copy: Path) -> None:
    edit(copy, "day2.yaml", lambda d: d["spam_flood"].update(accounts=["nobody"]))
    with pytest.raises(
        ScenarioError, match=r"^day2\.yaml: post 'spam-1': unknown account 'nobody'"
    ):
        load_scenario(copy)


def test_duplicate_post_key(copy: Path) -> None:
    edit(copy, "day3.yaml", lambda d: post_in(d, "d3-dan-evening").update(key="d1-dan-evening"))
    with pytest.raises(ScenarioError, match=r"^day3\.yaml: post 'd1-dan-evening': duplicate"):
        load_scenario(copy)


def test_answer_must_appear_in_evidence(copy: Path) -> None:
    edit(copy, "facts.yaml", lambda d: d["facts"][8].update(answer="$1,000"))
    with pytest.raises(
        ScenarioError, match=r"^facts\.yaml: fact 'pulse-x2-price': answer '\$1,000'"
    ):
        load_scenario(copy)


def test_unknown_evidence_and_opted_out_evidence(copy: Path) -> None:
    edit(copy, "facts.yaml", lambda d: d["facts"][8].update(evidence=["article:nope"]))
    with pytest.raises(
        ScenarioError, match="fact 'pulse-x2-price': evidence 'article:nope' does not exist"
    ):
        load_scenario(copy)
    edit(
        copy,
        "facts.yaml",
        lambda d: d["facts"][8].update(evidence=["post:d1-quiet-leak"], answer="$999"),
    )
    with pytest.raises(ScenarioError, match="opted out of indexing"):
        load_scenario(copy)


def test_fact_resting_only_on_the_bad_day_is_refused(copy: Path) -> None:
    edit(
        copy,
        "facts.yaml",
        lambda d: d["facts"][8].update(
            evidence=["article:riverside-path-flooding"], answer="Wharf"
        ),
    )
    with pytest.raises(ScenarioError, match="bad-batch day"):
        load_scenario(copy)


def test_distractor_equal_to_answer(copy: Path) -> None:
    edit(copy, "facts.yaml", lambda d: d["facts"][8].update(distractors=["$649", "$1", "$2"]))
    with pytest.raises(
        ScenarioError, match="fact 'pulse-x2-price': a distractor equals the answer"
    ):
        load_scenario(copy)


def test_timestamp_outside_its_day_and_without_timezone(copy: Path) -> None:
    edit(copy, "day1.yaml", lambda d: d["articles"][0].update(published_at="2026-11-03T08:00:00Z"))
    with pytest.raises(
        ScenarioError,
        match=r"^day1\.yaml: article 'orrin-pulse-x2-launch': published_at .* not inside day 1",
    ):
        load_scenario(copy)
    edit(copy, "day1.yaml", lambda d: d["articles"][0].update(published_at="2026-11-02T08:00:00"))
    with pytest.raises(ScenarioError, match=r"published_at: .*no timezone"):
        load_scenario(copy)


def test_edit_and_delete_must_follow_creation(copy: Path) -> None:
    edit(
        copy,
        "day1.yaml",
        lambda d: post_in(d, "d1-jiwoo-deleted").update(deleted_at="2026-11-01T00:00:00Z"),
    )
    with pytest.raises(
        ScenarioError, match="post 'd1-jiwoo-deleted': deleted_at must be after created_at"
    ):
        load_scenario(copy)


def test_unknown_field_and_bad_yaml(copy: Path) -> None:
    edit(copy, "accounts.yaml", lambda d: d["accounts"][0].update(colour="blue"))
    with pytest.raises(
        ScenarioError, match=r"^accounts\.yaml: account 'orrinlabs': unknown field\(s\) 'colour'"
    ):
        load_scenario(copy)
    edit(copy, "accounts.yaml", lambda d: d["accounts"][0].pop("colour"))
    (copy / "day4.yaml").write_text("posts: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"^day4\.yaml: invalid YAML"):
        load_scenario(copy)


def test_reply_to_unknown_post_and_missing_file(copy: Path) -> None:
    edit(copy, "day3.yaml", lambda d: post_in(d, "d3-tomas-wifi-q").update(in_reply_to="ghost"))
    with pytest.raises(
        ScenarioError, match="post 'd3-tomas-wifi-q': in_reply_to names unknown post 'ghost'"
    ):
        load_scenario(copy)
    (copy / "day3.yaml").unlink()
    with pytest.raises(ScenarioError, match=r"^day3\.yaml: missing"):
        load_scenario(copy)


def test_archive_must_predate_day_one(copy: Path) -> None:
    edit(
        copy, "archive.yaml", lambda d: d["articles"][0].update(published_at="2026-11-02T09:00:00Z")
    )
    with pytest.raises(
        ScenarioError, match=r"article 'tessford-a-short-history': published_at .* not before day 1"
    ):
        load_scenario(copy)
