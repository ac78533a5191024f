"""Every FreshLM alert, held to the same rules: its links and buttons open console or Airflow
pages over https whatever the store backend (never an ``s3://`` or ``file://`` URI), buttons
fit Slack's limits, dynamic text is escaped, and with ``FRESHLM_ALERT_LANGUAGE=ko`` every
header, field label and next step is Korean."""

from __future__ import annotations

import json
import re

import pytest

from freshlm.alerts.blocks import MAX_ACTIONS, MAX_BUTTON_TEXT_CHARS, MAX_BUTTON_URL_CHARS
from freshlm.alerts.links import accept_batch_url, rollback_url, store_file_url
from freshlm.alerts.texts import TEXTS
from freshlm.settings import get_settings
from tests.freshlm.alerts import every_alert as every
from tests.support.slack_text import text_of, within_limits

HANGUL = re.compile(r"[\uac00-\ud7a3]")
KOREAN = {ko for _, ko in TEXTS.values()}
ENGLISH_ONLY = {en for en, ko in TEXTS.values() if en != ko}


@pytest.fixture(params=["en", "ko"])
def language(request, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FRESHLM_STORE_URI", every.STORE)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", every.CONSOLE)
    monkeypatch.setenv("FRESHLM_ALERT_LANGUAGE", request.param)
    get_settings.cache_clear()
    yield request.param
    get_settings.cache_clear()


@pytest.mark.parametrize("kind", sorted(every.ALERTS))
def test_every_alert_links_only_clickable_pages_and_keeps_slack_s_limits(kind, language) -> None:
    message = every.ALERTS[kind]()
    within_limits(message)
    wire = json.dumps(message.payload(), ensure_ascii=False)
    assert "s3://" not in wire and "file://" not in wire
    # The header is plain_text (Slack shows it literally); everything else is mrkdwn.
    assert message.blocks[0]["text"]["type"] == "plain_text"
    wire = json.dumps([message.text, message.blocks[1:]], ensure_ascii=False)
    urls = re.findall(r"<(https?://[^|>]+)\|", wire) + [b["url"] for b in every.buttons(message)]
    assert urls, "an alert with nowhere to go"
    assert all(u.startswith(every.CONSOLE) or u.startswith("http://serve") for u in urls), urls
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert len(actions) <= 1 and all(0 < len(b["elements"]) <= MAX_ACTIONS for b in actions)
    for button in every.buttons(message):
        assert button["type"] == "button" and button["text"]["type"] == "plain_text"
        assert 0 < len(button["text"]["text"]) <= MAX_BUTTON_TEXT_CHARS
        assert len(button["url"]) <= MAX_BUTTON_URL_CHARS
    # User-controlled text shows as written: it neither pings nor becomes a link.
    assert "<!channel>" not in wire and "<https://evil" not in wire


@pytest.mark.parametrize("kind", sorted(every.ALERTS))
def test_korean_alerts_leave_no_english_header_label_or_next_step(kind, language) -> None:
    message = every.ALERTS[kind]()
    header = message.blocks[0]["text"]["text"]
    labels = [
        re.match(r"\*(.+?)\*\n", f["text"]).group(1)
        for b in message.blocks
        for f in b.get("fields", [])
    ]
    shown = text_of(message) + " ".join(b["text"]["text"] for b in every.buttons(message))
    english = [phrase for phrase in ENGLISH_ONLY if phrase.split("{")[0].strip() in shown]
    if language == "ko":
        assert HANGUL.search(header), header
        assert all(label in KOREAN for label in labels), labels
        assert all(HANGUL.search(b["text"]["text"]) for b in every.buttons(message))
        # No fixed English phrase (longer than a word) is left anywhere a person reads.
        assert [p for p in english if len(p.split("{")[0].split()) > 2] == []
    else:
        assert not HANGUL.search(text_of(message))


def test_a_refused_batch_offers_its_data_docs_and_the_accept_form(language) -> None:
    message = every.ALERTS["gate refused"]()
    urls = [b["url"] for b in every.buttons(message)]
    docs_key = every.DATA_DOCS.removeprefix(every.STORE + "/")
    assert urls[:2] == [store_file_url(docs_key), accept_batch_url(every.CANDIDATE)]
    assert f"<{store_file_url(docs_key)}|Data Docs>" in text_of(message)
    # A published (warned) or accepted batch has nothing to accept.
    for kind in ("gate warned", "gate accepted"):
        assert accept_batch_url(every.CANDIDATE) not in str(every.ALERTS[kind]().blocks)


def test_promotions_offer_the_report_and_a_rollback_rejections_only_the_report(language) -> None:
    promoted = [b["url"] for b in every.buttons(every.ALERTS["promoted"]())]
    rejected = [b["url"] for b in every.buttons(every.ALERTS["rejected"]())]
    report_page = store_file_url(f"reports/{every.CAND}/{every.BASE}/report.html")
    assert promoted == [report_page, rollback_url(), every.LOG_URL]
    assert rejected == [report_page, every.LOG_URL]  # production did not move


def test_the_task_failure_alert_opens_the_log(language) -> None:
    assert [b["url"] for b in every.buttons(every.ALERTS["task failure"]())] == [every.LOG_URL]


def test_a_bad_alert_language_is_refused_naming_the_setting(monkeypatch) -> None:
    from freshlm.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=r"FRESHLM_ALERT_LANGUAGE='fr'.*en, ko"):
        Settings.from_env({"FRESHLM_ALERT_LANGUAGE": "fr"})
