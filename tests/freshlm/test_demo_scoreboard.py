"""The demo's scoreboard: each night's counts add up and a refused batch says it was not trained."""

from __future__ import annotations

from freshlm.demo_nights import Night, day_window, scoreboard


def _night(number: int, **fields) -> Night:
    from datetime import date

    return Night(number=number, window=day_window(date(2026, 11, 1 + number)), **fields)


def test_counts_add_up_and_the_refused_batch_is_marked_not_trained():
    good = _night(
        1,
        crawled=46,
        kept=46,
        gate="ok",
        gate_passed=True,
        production_metrics={"new_knowledge_acc": 0.39, "world_new_acc": 0.077, "ppl_old": 3.93},
        candidate_metrics={"new_knowledge_acc": 0.935, "world_new_acc": 1.0, "ppl_old": 3.71},
        decision="PROMOTED",
    )
    # Night 2 of the demo: 83 records and one malformed feed item; curation dropped 50 spam
    # posts; the gate refused the batch.
    bad = _night(
        2,
        crawled=84,
        crawl_quarantined=1,
        kept=33,
        dropped=50,
        gate="critical",
        gate_passed=False,
        decision="not trained (batch quarantined)",
    )
    assert bad.kept + bad.quarantined == bad.crawled
    lines = scoreboard([good, bad]).splitlines()
    assert lines[0].split()[:5] == ["night", "crawled", "kept", "quarantined", "gate"]
    row1, row2 = lines[2], lines[3]
    assert row1.split()[:6] == ["1", "(2026-11-02)", "46", "46", "0", "ok"]
    assert "0.390 -> 0.935" in row1 and "0.077 -> 1.000" in row1 and "3.9 -> 3.7" in row1
    assert row2.split()[:8] == ["2", "(2026-11-03)", "84", "33", "51", "critical", "FAIL", "-"]
    assert row2.rstrip().endswith("not trained (batch quarantined)")
