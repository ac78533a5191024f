"""The demo's scoreboard: each night's counts add up and a refused batch says it was not trained."""

from __future__ import annotations

from sandbox.demo_nights import Night, day_window, final_report, scoreboard


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


def test_the_final_report_says_whether_the_fact_and_retention_goals_were_met():
    from types import SimpleNamespace

    settings = SimpleNamespace(
        store_uri="file:///h/store", home="/h", airflow_home="/h/airflow", promotion_rules=None
    )

    def nights(final_facts: float, final_retention: float) -> list[Night]:
        first = _night(
            1,
            production_metrics={"world_new_acc": 0.077, "retention_acc": 0.578},
            candidate_metrics={"world_new_acc": 1.0, "retention_acc": 0.64},
            decision="PROMOTED",
        )
        third = _night(
            3,
            production_metrics={"world_new_acc": 0.625, "retention_acc": 0.688},
            candidate_metrics={"world_new_acc": final_facts, "retention_acc": final_retention},
            decision="PROMOTED",
        )
        return [first, third]

    short = final_report(nights(0.708, 0.65), [], settings, 444.0)
    assert "0.077 (base, night 1's facts) -> 0.708" in short
    assert "goal at least 0.80: NOT met" in short
    assert "base 0.578, production after night 3 0.650; goal: within 0.05 of the base: met" in short
    assert "Total time 7.4 min" in short
    met = final_report(nights(0.833, 0.5), [], settings, 444.0)
    assert "goal at least 0.80: met" in met
    assert "goal: within 0.05 of the base: NOT met" in met  # 0.578 -> 0.500 forgot too much
    assert "control:" not in met  # a report without the control says nothing about it


def test_the_final_report_shows_what_the_question_adds_over_familiarity():
    from types import SimpleNamespace

    settings = SimpleNamespace(
        store_uri="file:///h/store", home="/h", airflow_home="/h/airflow", promotion_rules=None
    )
    first = _night(
        1,
        production_metrics={"world_new_acc": 0.077},
        candidate_metrics={"world_new_acc": 1.0},
        decision="PROMOTED",
    )
    third = _night(
        3,
        production_metrics={"world_new_acc": 0.583},
        candidate_metrics={"world_new_acc": 0.75},
        decision="PROMOTED",
        controls={"world_new_wrong_question": {"items": 24, "baseline": 0.5, "candidate": 0.625}},
    )
    text = final_report([first, third], [], settings, 60.0)
    assert "another fact's question score 0.625" in text
    assert "the question itself adds 0.125" in text


def test_the_final_report_counts_cost_per_fact_learned():
    from types import SimpleNamespace

    from sandbox.demo_nights import facts_learned

    settings = SimpleNamespace(
        store_uri="file:///h/store", home="/h", airflow_home="/h/airflow", promotion_rules=None
    )
    controls = {"world_new_wrong_question": {"items": 13}}
    first = _night(
        1,
        production_metrics={"world_new_acc": 1 / 13},
        candidate_metrics={"world_new_acc": 1.0},
        controls=controls,
        cost={"device_hours": 0.08, "energy_kwh": 0.0006},
        decision="PROMOTED",
    )
    refused = _night(2, decision="not trained (batch quarantined)")
    assert facts_learned(first) == 12 and facts_learned(refused) == 0
    report = final_report([first, refused], [], settings, 444.0)
    assert "0.080 device-hours, 0.0006 kWh; 12 new facts learned" in report
    assert "0.0067 device-hours and 0.00005 kWh per fact" in report


def test_the_general_knowledge_retention_is_shown_against_the_base():
    from types import SimpleNamespace

    settings = SimpleNamespace(
        store_uri="file:///h/store", home="/h", airflow_home="/h/airflow", promotion_rules=None
    )

    def nights(final: float | None) -> list[Night]:
        base = None if final is None else 1.0
        first = _night(
            1,
            production_metrics={"retention_acc": 0.6, "general_said_acc": base},
            candidate_metrics={"retention_acc": 0.6, "general_said_acc": final},
            decision="PROMOTED",
        )
        return [first]

    board = scoreboard(nights(0.96)).splitlines()
    assert "general said" in board[0] and "1.000 -> 0.960" in board[2]
    assert "production after night 3 0.960; goal: at least 0.95 x the base: met" in final_report(
        nights(0.96), [], SimpleNamespace(**vars(settings)), 60.0
    )
    assert "goal: at least 0.95 x the base: NOT met" in final_report(
        nights(0.9), [], settings, 60.0
    )
    assert "not measured (the base answered none of the general questions)" in final_report(
        nights(None), [], settings, 60.0
    )


def test_each_night_shows_its_control_training_speed_and_minutes():
    night = _night(
        1,
        gate="ok",
        gate_passed=True,
        production_metrics={"world_new_acc": 0.154},
        candidate_metrics={"world_new_acc": 0.692},
        controls={"world_new_wrong_question": {"items": 13, "baseline": 0.231, "candidate": 0.538}},
        train_tokens_per_s=169.9,
        seconds=1626.0,
        decision="PROMOTED",
    )
    skipped = _night(2, gate="critical", gate_passed=False, seconds=95.0, decision="not trained")
    header, _, row, row2 = scoreboard([night, skipped]).splitlines()
    assert "control" in header and "train tok/s" in header and "minutes" in header
    assert "0.154 -> 0.692" in row and "0.231 -> 0.538" in row
    assert " 170 " in row and " 27.1 " in row
    # A night that trained nothing has no speed and no control; its minutes still count.
    assert " 1.6 " in row2 and row2.count(" - ") >= 2
