"""Each step on small hand-made cases."""

from __future__ import annotations

import dataclasses

import pytest

from freshlm.curation.config import CurationConfig, SplitConfig, ToxicityConfig
from freshlm.curation.steps import (
    LanguageStep,
    NormalizeStep,
    PIIStep,
    QualityStep,
    SplitStep,
    ToxicityStep,
)
from freshlm.curation.steps.split import split_of
from freshlm.pii import luhn_valid, scrub
from tests.freshlm.curation.helpers import (
    ARTICLE,
    KOREAN_ARTICLE,
    SCRUBBED_SAMPLES,
    make_doc,
    run_step,
)

# --- normalize -----------------------------------------------------------------------------


def test_normalize_nfc_html_entities_whitespace_and_boilerplate():
    decomposed = "Cafe\u0301"  # e + combining acute
    text = (
        f"  {decomposed}&nbsp;open &amp; busy<br>Second\u200b line\t\there\r\n\n\n\n"
        "<p>Real <b>news</b> paragraph.</p>\nRead more\nShare this article\n"
        "무단 전재 및 재배포 금지"
    )
    kept, dropped = run_step(NormalizeStep(), [make_doc(text, title="A &amp; B")])
    assert not dropped
    doc = kept[0]
    assert doc["text"] == "Café open & busy\nSecond line here\n\nReal news paragraph."
    assert doc["title"] == "A & B"
    assert kept[0]["text"].count("\n\n") == 1


def test_normalize_keeps_long_lines_that_mention_boilerplate_words():
    line = "Read more about the festival in our guide, which lists every stall and the bus times."
    kept, _ = run_step(NormalizeStep(), [make_doc(line + "\nThis site uses cookies.")])
    assert kept[0]["text"] == line


def test_normalize_drops_empty_text_with_reason():
    step = NormalizeStep()
    kept, dropped = run_step(step, [make_doc("<div> &nbsp; </div>\n\u200b")])
    assert kept == []
    assert dropped[0]["reason"] == "normalize:empty"
    assert step.counters["dropped:empty"] == 1


# --- language ------------------------------------------------------------------------------


def test_language_english_korean_and_mislabelled_post():
    docs = [
        make_doc(ARTICLE, language="und"),
        make_doc(KOREAN_ARTICLE, language="und"),
        # Scenario day 2: a Korean post whose client tagged it "en".
        make_doc("오늘 테스퍼드 날씨 정말 좋네요 산책 가요", kind="sns", _declared="en"),
    ]
    step = LanguageStep()
    kept, dropped = run_step(step, docs)
    assert not dropped
    assert [d["language"] for d in kept] == ["en", "ko", "ko"]
    assert all(0.5 <= d["language_score"] <= 1.0 for d in kept)
    assert step.counters["declared_overridden"] == 1


def test_language_drops_confident_unsupported_language():
    german = (
        "Die Stadtverwaltung hat am Montag beschlossen, die Brücke über den Fluss für zwei "
        "Wochen zu sperren, weil die Bauarbeiten länger dauern als geplant."
    )
    kept, dropped = run_step(LanguageStep(), [make_doc(german)])
    assert kept == []
    assert dropped[0]["reason"] == "language:unsupported"
    assert dropped[0]["language"] == "de"


def test_language_low_confidence_falls_back_to_declared():
    kept, _ = run_step(LanguageStep(), [make_doc("X2 5,200 mAh", kind="sns", _declared="en")])
    assert kept[0]["language"] in ("en", "und")


# --- quality -------------------------------------------------------------------------------


def _quality(docs):
    step = QualityStep()
    kept, dropped = run_step(step, docs)
    return step, kept, dropped


def test_quality_keeps_good_english_news_and_korean_text():
    _, kept, dropped = _quality([make_doc(ARTICLE), make_doc(KOREAN_ARTICLE, language="ko")])
    assert [d["reason"] for d in dropped] == []
    assert len(kept) == 2


def test_quality_korean_text_would_fail_english_rules():
    # The same Korean article judged as English fails (no English stop words): the per-language
    # departure is what keeps it.
    _, kept, dropped = _quality([make_doc(KOREAN_ARTICLE, language="en")])
    assert kept == []
    assert dropped[0]["reason"].startswith("quality:gopher:")


def test_quality_keeps_short_sns_posts_in_english_and_korean():
    posts = [
        "Doors are open on Hallam Street. Today's bun: pear and cardamom. Bring your own cup!",
        "Three colours for the Pulse X2: Slate Moss, Ember Copper and Tidewater Blue. #OrrinPulse",
        "오늘 밤 파도잠 했어요 ㅋㅋ 너무 피곤해서 #테스퍼드",
        "Fog on the Ondra until 10:00, then bright. High 11°C, low 4°C. #Tessford #weather",
    ]
    docs = [make_doc(p, kind="sns", language="ko" if "오늘" in p else "en") for p in posts]
    _, kept, dropped = _quality(docs)
    assert [d["reason"] for d in dropped] == []
    assert len(kept) == 4


def test_quality_sns_rules_do_not_let_one_word_posts_through():
    _, kept, dropped = _quality([make_doc("lol", kind="sns")])
    assert kept == []
    assert dropped[0]["reason"] == "quality:gopher:min_words"


def _unique_words(n: int, start: int = 0) -> list[str]:
    # Distinct made-up words, so that no repetition rule fires before the rule under test.
    return [f"{chr(97 + i % 26)}{chr(97 + (i // 26) % 26)}word{i}" for i in range(start, start + n)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("The page of " + " ".join(_unique_words(30)) + ".", "quality:gopher:min_words"),
        (
            " ".join(f"#{w}" for w in _unique_words(60)) + " the of",
            "quality:gopher:too_many_hashes",
        ),
        (
            "The and of.\n"
            + "\n".join(f"- {' '.join(_unique_words(4, 4 * i))}" for i in range(30)),
            "quality:gopher:too_many_bullets",
        ),
        (" ".join(_unique_words(80)) + ".", "quality:gopher:stop_words"),
        (("Cheap phones for sale today and every day of the week.\n") * 20, "gopher_rep"),
        (ARTICLE + "\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", "c4:lorem"),
        (ARTICLE + "\n\nfunction init() { return window.app; } is the code here.", "c4:curly"),
        (
            "\n".join(
                f"Menu item {i} Home News Sport Weather Contact About Shop Login Signup"
                for i in range(12)
            ),
            "quality:",
        ),
    ],
)
def test_quality_drops_long_english_web_page_junk(text, reason):
    _, kept, dropped = _quality([make_doc(text, kind="web")])
    assert kept == []
    assert reason in dropped[0]["reason"]


def test_quality_c4_removes_bad_lines_and_keeps_paragraphs():
    text = ARTICLE + "\n\nShare on Facebook\n\nPlease enable JavaScript to view the comments."
    step, kept, dropped = _quality([make_doc(text, kind="web")])
    assert not dropped
    assert kept[0]["text"] == ARTICLE
    assert step.counters["c4_lines_removed:no_terminal_punct"] == 1
    assert step.counters["c4_lines_removed:javascript"] == 1


def test_quality_rules_resolve_per_language_and_kind():
    q = CurationConfig().quality
    assert q.rules_for("en", "web").gopher.min_words == 50
    assert q.rules_for("en", "sns").gopher.min_words == 3
    assert q.rules_for("ko", "news").gopher.min_stop_words == 0
    assert q.rules_for("ko", "news").gopher.min_avg_word_length == 1
    assert q.rules_for("ko", "sns").c4 is None
    assert q.rules_for("en", "unknown-kind") == q.rules_for("en", "web")


# --- PII -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "placeholder"), SCRUBBED_SAMPLES)
def test_every_pii_type_is_scrubbed(text, kind, placeholder):
    out, found = scrub(text)
    assert placeholder in out
    assert found.get(kind, 0) >= 1, (out, found)


def test_pii_leaves_lookalikes_alone():
    text = (
        "The Pulse X2 costs $649, 5,200 mAh, on 2026-11-02 at 10:00:00, arXiv 2611.01023, "
        "14,200 words, won 5-2 in 1994, firmware 2.1.4, card 4111 1111 1111 1112."
    )
    out, found = scrub(text)
    assert out == text
    assert found == {}


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_pii_step_counts_by_type_and_keeps_handle_out_of_email():
    doc = make_doc(
        "Ask @jiwoo@haeon.example or jiwoo@haeon.example, 010-1234-5678, +82 10 9876 5432, "
        "https://h.example/x?access_token=s3cr3t",
        kind="sns",
        title="mail a@b.example",
    )
    step = PIIStep()
    kept, _ = run_step(step, [doc])
    out = kept[0]
    assert out["pii"] == {"url_secret": 1, "handle": 1, "email": 2, "phone": 2}
    assert "@" not in out["text"] and "s3cr3t" not in out["text"]
    assert out["title"] == "mail <EMAIL>"
    assert step.counters["pii:email"] == 2
    assert step.counters["docs_with_pii"] == 1


# --- toxicity ------------------------------------------------------------------------------


def test_toxicity_drops_by_ratio_with_reason():
    step = ToxicityStep()
    toxic = make_doc("you stupid bastard, go fuck yourself, asshole", kind="sns")
    kept, dropped = run_step(step, [toxic])
    assert kept == []
    assert dropped[0]["reason"] == "toxicity:ratio"
    assert "bastard" in dropped[0]["detail"]
    assert dropped[0]["toxicity"] > 0.05


def test_toxicity_keeps_long_text_with_one_word_and_never_matches_substrings():
    step = ToxicityStep()
    one_word = make_doc(ARTICLE + " The crowd booed the bastard referee.")
    substring = make_doc("The class assessed the grass at Scunthorpe and Essex.")
    kept, dropped = run_step(step, [one_word, substring])
    assert not dropped
    assert 0 < kept[0]["toxicity"] < 0.05
    assert kept[1]["toxicity"] == 0


def test_toxicity_phrases_need_word_boundaries_and_korean_prefixes_match():
    step = ToxicityStep(dataclasses.replace(ToxicityConfig(), max_ratio=0.0))
    docs = [
        make_doc("ball gag"),  # phrase on the list
        make_doc("the ball gagged"),  # not the phrase
        make_doc("씨발놈아 꺼져"),  # Korean entry with a particle attached
        make_doc("출발점은 시발점이다"),  # benign word that starts like an entry
    ]
    kept, dropped = run_step(step, docs)
    assert [d["text"] for d in dropped] == ["ball gag", "씨발놈아 꺼져"]
    assert [d["toxicity"] for d in kept] == [0, 0]


# --- split ---------------------------------------------------------------------------------


def test_split_is_deterministic_and_near_ratio():
    config = SplitConfig(heldout_ratio=0.1)
    ids = [f"{i:032x}" for i in range(5000)]
    first = [split_of(i, config) for i in ids]
    assert first == [split_of(i, config) for i in ids]
    share = first.count("heldout") / len(ids)
    assert 0.08 < share < 0.12
    step = SplitStep(config)
    kept, _ = run_step(step, [make_doc("x", doc_id=i) for i in ids[:100]])
    assert [d["split"] for d in kept] == first[:100]
    assert step.counters["train"] + step.counters["heldout"] == 100
    with pytest.raises(ValueError, match="heldout_ratio"):
        SplitStep(SplitConfig(heldout_ratio=1.5))
