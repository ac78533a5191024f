"""The PII prefilter (``may_contain_pii``/``detect_pii``) never hides what ``scrub`` finds.

The gate checks curated output for residual PII with ``detect_pii``: ``scrub`` runs only where
the prefilter matches. A prefilter that missed a match of any rule would let PII through the
gate unseen, so every rule's regex is checked against it: on strings generated from the rule's
own regex, on generated PII of every type and format the scrubber knows, on the hand-written
samples, on random text and on the sandbox scenario's documents.
"""

from __future__ import annotations

import ipaddress
import re
import string
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from freshlm import pii
from freshlm.pii import (
    PLACEHOLDERS,
    PREFILTERS,
    detect_pii,
    luhn_valid,
    may_contain_pii,
    scrub,
)
from sandbox.records import archive_records, day_records
from tests.freshlm.curation.helpers import ARTICLE, KOREAN_ARTICLE, SCRUBBED_SAMPLES

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)

# Text around the PII: words, digits, punctuation, Hangul, and the characters the rules'
# lookarounds care about.
FILLER = st.text(
    alphabet=st.sampled_from(
        list(string.ascii_letters + string.digits + " .,:;-+()@/=&?#\n") + list("계좌번호한국어")
    ),
    max_size=25,
)


def embedded(pii_value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(FILLER, pii_value, FILLER).map(lambda t: f"{t[0]} {t[1]} {t[2]}")


def assert_never_hidden(text: str) -> None:
    found = scrub(text)[1]
    assert detect_pii(text) == found, text
    if found:
        assert may_contain_pii(text), f"the prefilter hides {found} in {text!r}"
    for name, rule in pii._RULES.items():
        if rule.pattern.search(text):
            assert may_contain_pii(text), f"the prefilter misses rule {name} in {text!r}"


def test_every_rule_has_a_prefilter_and_every_type_a_rule():
    assert set(PREFILTERS) == set(pii._RULES)
    assert {rule.kind for rule in pii._RULES.values()} == set(PLACEHOLDERS)


@pytest.mark.parametrize("name", sorted(pii._RULES))
@SETTINGS
@given(data=st.data())
def test_strings_from_each_rules_own_regex_pass_the_prefilter(name, data):
    rule = pii._RULES[name]
    # Hypothesis ignores lookarounds when generating, so keep what the rule really matches.
    text = data.draw(st.from_regex(rule.pattern, fullmatch=False))
    assume(rule.pattern.search(text))
    assert may_contain_pii(text), f"{name}: {text!r}"
    assert_never_hidden(text)


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def _rrn_complete(birth: str, serial: str, sep: str) -> str:
    """A Korean registration number with the right check digit after ``birth`` + ``serial``."""
    for check in "0123456789":
        if pii.rrn_valid(birth + serial + check):
            return f"{birth}{sep}{serial}{check}"
    return f"{birth}{sep}{serial}0"  # an impossible date: the scrubber must leave it


@st.composite
def card_numbers(draw) -> str:
    body = draw(st.text(alphabet="0123456789", min_size=12, max_size=18))
    number = _luhn_complete(body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    group = draw(st.sampled_from([4, 3, 5, 1]))
    return sep.join(number[i : i + group] for i in range(0, len(number), group))


def nd(low: int, high: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=low, max_size=high or low)


label = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,8}[A-Za-z0-9]", fullmatch=True)
user = st.from_regex(r"[A-Za-z0-9_.+-]{1,12}", fullmatch=True).filter(
    lambda u: not u.startswith(".") and not u.endswith(".") and ".." not in u
)

PII_BY_TYPE: dict[str, st.SearchStrategy[str]] = {
    "url_secret": st.tuples(
        st.sampled_from(["?", "&", ";"]),
        st.sampled_from(
            ["token", "api_key", "ApiKey", "SECRET", "sig", "password", "session_id", "code"]
        ),
        st.from_regex(r"[A-Za-z0-9%._~-]{1,20}", fullmatch=True),
    ).map(lambda t: f"https://x.example/p{t[0]}{t[1]}={t[2]}"),
    "handle": st.tuples(user.filter(lambda u: re.fullmatch(r"[A-Za-z0-9_.]+", u)), label).map(
        lambda t: f"@{t[0]}@{t[1]}.social"
    ),
    "email": st.tuples(user, label, st.sampled_from(["com", "example", "co", "kr"])).map(
        lambda t: f"{t[0]}@{t[1]}.{t[2]}"
    ),
    "ip": st.one_of(
        st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
        st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
        st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n).exploded),
    ),
    "kr_rrn": st.tuples(
        nd(2),
        st.integers(1, 12),
        st.integers(1, 28),
        st.sampled_from("12345678"),
        nd(5),
        st.sampled_from(["-", " ", ""]),
    ).map(lambda t: _rrn_complete(f"{t[0]}{t[1]:02d}{t[2]:02d}", f"{t[3]}{t[4]}", t[5])),
    "us_ssn": st.tuples(st.integers(1, 899), st.integers(1, 99), st.integers(1, 9999))
    .filter(lambda t: t[0] != 666)
    .map(lambda t: f"{t[0]:03d}-{t[1]:02d}-{t[2]:04d}"),
    "uk_nino": st.tuples(
        st.sampled_from("ABCEGHJKLMNOPRSTWXYZ"),
        st.sampled_from("ABCEGHJKLMNPRSTWXYZ"),
        nd(6),
        st.sampled_from("ABCD"),
        st.sampled_from([" ", ""]),
    ).map(lambda t: f"{t[0]}{t[1]}{t[4]}{t[2][:2]}{t[4]}{t[2][2:4]}{t[4]}{t[2][4:]}{t[4]}{t[3]}"),
    "credit_card": card_numbers(),
    "bank_account": st.tuples(
        st.sampled_from(
            ["account", "Account no.", "ACCOUNT number", "계좌", "계좌번호", "account #"]
        ),
        st.sampled_from([" ", ": ", " is ", "\t"]),
        st.from_regex(r"\d[\d-]{6,22}\d", fullmatch=True),
    ).map("".join),
    "phone": st.one_of(
        st.tuples(nd(1, 3), nd(2, 4), nd(3, 4), nd(3, 4)).map(lambda t: "+" + " ".join(t)),
        st.tuples(nd(1, 3), nd(1, 4), nd(3), nd(4)).map(
            lambda t: f"+{t[0]} ({t[1]}) {t[2]}-{t[3]}"
        ),
        st.tuples(nd(1, 2), nd(3, 4), nd(4)).map(lambda t: f"0{t[0]}-{t[1]}-{t[2]}"),
        st.tuples(st.sampled_from("016789"), nd(7, 8)).map(lambda t: f"01{t[0]}{t[1]}"),
        st.tuples(nd(2, 4), nd(6, 8)).map(lambda t: f"0{t[0]} {t[1]}"),
        st.tuples(nd(2, 4), nd(3, 4), nd(3, 4)).map(lambda t: f"0{t[0]} {t[1]} {t[2]}"),
        st.tuples(nd(3), nd(3), nd(4)).map(lambda t: f"({t[0]}) {t[1]}-{t[2]}"),
        st.tuples(nd(3), st.sampled_from("-."), nd(3), nd(4)).map(
            lambda t: f"{t[0]}{t[1]}{t[2]}{t[1]}{t[3]}"
        ),
    ),
}


def test_every_pii_type_has_a_generator():
    assert set(PII_BY_TYPE) == set(PLACEHOLDERS)


@pytest.mark.parametrize("pii_type", sorted(PII_BY_TYPE))
@SETTINGS
@given(data=st.data())
def test_generated_pii_of_every_type_is_never_hidden(pii_type, data):
    value = data.draw(PII_BY_TYPE[pii_type])
    alone = f"text {value} here"
    # The generators make what the scrubber removes, most of the time (its validators decide).
    if pii_type in scrub(alone)[1]:
        assert may_contain_pii(alone)
    assert_never_hidden(alone)
    assert_never_hidden(data.draw(embedded(st.just(value))))


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_gives_the_same_counts_as_scrub(text):
    assert_never_hidden(text)


@SETTINGS
@given(st.lists(st.sampled_from(sorted(PII_BY_TYPE)), min_size=2, max_size=4), st.data())
def test_several_pii_values_in_one_text(types, data):
    parts = [data.draw(PII_BY_TYPE[t]) for t in types]
    assert_never_hidden(" and ".join(parts))


@pytest.mark.parametrize(("text", "kind", "placeholder"), SCRUBBED_SAMPLES)
def test_the_scrubbers_samples_pass_the_prefilter(text, kind, placeholder):
    assert may_contain_pii(text)
    assert detect_pii(text) == scrub(text)[1]
    assert detect_pii(text).get(kind, 0) >= 1


def test_clean_prose_skips_the_scrubber():
    for text in (ARTICLE, KOREAN_ARTICLE, "won 5-2 in 1994, at 10:00 on 2026-11-02"):
        assert not may_contain_pii(text)
        assert detect_pii(text) == {} == scrub(text)[1]


def test_the_scenario_documents_give_the_same_counts_as_scrub(scenario):
    records = archive_records(scenario)
    for day in scenario.days:
        records += day_records(scenario, day.date)
    texts = [r["text"] for r in records] + [r["title"] for r in records if r.get("title")]
    assert texts
    for text in texts:
        assert_never_hidden(text)


def test_only_a_and_A_match_a_case_insensitive_a():
    # The prefilter writes the rule's case-insensitive "account" as a(?i:ccount)|A(?i:ccount)
    # (a literal first letter lets the engine skip ahead): right only if nothing but "a" and
    # "A" matches (?i:a). The secret parameter names stay wholly inside (?i:...), as in the rule.
    pattern = re.compile("(?i:a)")
    assert {chr(c) for c in range(sys.maxunicode + 1) if pattern.fullmatch(chr(c))} == {"a", "A"}
    assert "a(?i:ccount)" in PREFILTERS["bank_account"]
    assert "A(?i:ccount)" in PREFILTERS["bank_account"]
