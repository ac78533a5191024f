"""PII detection and scrubbing: personal data replaced by typed placeholders, counted by type.

Curation scrubs with it (:class:`freshlm.curation.steps.pii.PIIStep`) and the gate checks
with the same rules that nothing is left (``expectations``), so both live in the core.

============= ================== =========================================================
type          placeholder        what is matched
============= ================== =========================================================
url_secret    ``<SECRET>``       the value of a secret-looking query parameter in a URL
                                 (``?token=…``, ``&api_key=…``, ``sig``, ``password`` …)
handle        ``<HANDLE>``       a fediverse handle ``@user@instance.tld``
email         ``<EMAIL>``        an e-mail address
ip            ``<IP>``           an IPv4 or IPv6 address (validated with ``ipaddress``)
kr_rrn        ``<NATIONAL_ID>``  a Korean resident (or foreigner) registration number, 주민등록번호:
                                 ``YYMMDD-GSSSSSC`` (hyphen, space or nothing), a real date,
                                 G 1-8, and the check digit C right (see :func:`rrn_valid`)
us_ssn        ``<NATIONAL_ID>``  a US Social Security number ``AAA-GG-SSSS`` (hyphens only:
                                 nine bare digits are too often something else), not an
                                 area, group or serial the SSA never issues (000, 666, 9xx)
uk_nino       ``<NATIONAL_ID>``  a UK National Insurance number ``AB 12 34 56 C`` (spaces
                                 optional, capitals), with the prefixes HMRC never issues left
                                 out (D F I Q U V first, D F I O Q U V second, BG GB KN NK NT
                                 TN ZZ)
credit_card   ``<CREDIT_CARD>``  13-19 digits, optionally grouped, that pass the Luhn check
bank_account  ``<BANK_ACCOUNT>`` a number right after "account"/"계좌" (e.g. 110-234-567890)
phone         ``<PHONE>``        ``+`` international numbers (8-15 digits), Korean
                                 (010-1234-5678, 02-123-4567, 01012345678), UK national
                                 (07700 900123, 020 7946 0958) and North American formats
============= ================== =========================================================

Types are scrubbed in that order: a handle is not also an e-mail address, a card number is
not also a phone number, a registration number (13 digits that may pass the Luhn check) is not
also a card number.

The national ids are those of the sources' countries (Korea, the UK, the US). Korean numbers
issued since October 2020 end in random digits with no check digit: only numbers whose check
digit holds are matched, so a 13-digit order number is not taken for one.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Callable

PLACEHOLDERS = {
    "url_secret": "<SECRET>",
    "handle": "<HANDLE>",
    "email": "<EMAIL>",
    "ip": "<IP>",
    "kr_rrn": "<NATIONAL_ID>",
    "us_ssn": "<NATIONAL_ID>",
    "uk_nino": "<NATIONAL_ID>",
    "credit_card": "<CREDIT_CARD>",
    "bank_account": "<BANK_ACCOUNT>",
    "phone": "<PHONE>",
}

_SECRET_PARAMS = (
    r"access_?token|auth_?token|id_?token|refresh_?token|token|api_?key|apikey|key|secret|"
    r"client_?secret|password|passwd|pwd|pass|auth|sig|signature|session_?id|sessionid|sid|"
    r"code|x-amz-signature|x-amz-credential|x-amz-security-token"
)
_URL_SECRET_RE = re.compile(rf"([?&;](?:{_SECRET_PARAMS})=)([^&#\s\"'<>]+)", re.I)
_HANDLE_RE = re.compile(
    r"(?<![\w@/])@[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b"
)
_IPV4_RE = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?!\.?\d)"
)
_IPV6_RE = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_RRN_RE = re.compile(
    r"(?<![\d-])[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[- ]?[1-8][0-9]{6}(?![\d-])"
)
_SSN_RE = re.compile(r"(?<![\d-])(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![\d-])")
_NINO_RE = re.compile(
    r"(?<![A-Za-z0-9])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]"
    r"(?![A-Za-z0-9])"
)
_NINO_NEVER_ISSUED = ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ")
_CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_ACCOUNT_RE = re.compile(
    r"((?:계좌(?:번호)?|account(?:\s+(?:no\.?|number|#))?)[^\d\n]{0,12}?)(\d[\d-]{6,22}\d)",
    re.I,
)
_PHONE_RE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,5}"  # international
    r"|0\d{1,2}-\d{3,4}-\d{4}"  # Korean with hyphens: 010-1234-5678, 02-123-4567
    r"|01[016789]\d{7,8}"  # Korean mobile without separators
    r"|0\d{2,4} (?:\d{6,8}|\d{3,4} \d{3,4})"  # UK national: 07700 900123, 020 7946 0958
    r"|\(\d{3}\) ?\d{3}[-.]\d{4}|\d{3}[-.]\d{3}[-.]\d{4}"  # North American
    r")(?![\w])"
)


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum (all payment card numbers do)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def rrn_valid(number: str) -> bool:
    """Whether a Korean registration number (13 digits, separators ignored) has a real birth
    date and a right check digit: ``(11 - sum(d_i * w_i) % 11) % 10`` with weights 2..9, 2..5.
    The century comes from the gender digit (1, 2, 5, 6: 1900s; 3, 4, 7, 8: 2000s)."""
    digits = [ord(ch) - 48 for ch in number if "0" <= ch <= "9"]
    if len(digits) != 13:
        return False
    century = 1900 if digits[6] in (1, 2, 5, 6) else 2000
    year = century + digits[0] * 10 + digits[1]
    month, day = digits[2] * 10 + digits[3], digits[4] * 10 + digits[5]
    if not _real_date(year, month, day):
        return False
    total = sum(d * w for d, w in zip(digits, _RRN_WEIGHTS, strict=False))
    return (11 - total % 11) % 10 == digits[12]


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _nino_issuable(value: str) -> bool:
    return value[:2] not in _NINO_NEVER_ISSUED


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def _is_ipv6(s: str) -> bool:
    if s.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _is_card(s: str) -> bool:
    digits = _digits(s)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_phone(s: str) -> bool:
    n = len(_digits(s))
    return 8 <= n <= 15


class _Rule:
    """One PII type: a regex, an optional validator, and the prefilter that skips the regex."""

    def __init__(
        self,
        kind: str,
        pattern: re.Pattern[str],
        needs: Callable[[str], bool],
        valid: Callable[[str], bool] | None = None,
        group: int = 0,
    ) -> None:
        self.kind = kind
        self.pattern = pattern
        self.needs = needs
        self.valid = valid
        self.group = group
        self.placeholder = PLACEHOLDERS[kind]

    def apply(self, text: str) -> tuple[str, int]:
        if not self.needs(text):
            return text, 0
        if self.valid is None and self.group == 0:
            return self.pattern.subn(self.placeholder, text)
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            value = match.group(self.group)
            if self.valid is not None and not self.valid(value):
                return match.group(0)
            count += 1
            if self.group == 0:
                return self.placeholder
            start = match.start(self.group) - match.start(0)
            whole = match.group(0)
            return whole[:start] + self.placeholder + whole[start + len(value) :]

        return self.pattern.sub(replace, text), count


_HAS_DIGIT = re.compile(r"\d").search

_RULES = {
    "url_secret": _Rule("url_secret", _URL_SECRET_RE, lambda t: "=" in t and "://" in t, group=2),
    "handle": _Rule("handle", _HANDLE_RE, lambda t: t.count("@") >= 2),
    "email": _Rule("email", _EMAIL_RE, lambda t: "@" in t),
    "ip": _Rule("ip", _IPV4_RE, lambda t: "." in t and _HAS_DIGIT(t) is not None),
    "ipv6": _Rule("ip", _IPV6_RE, lambda t: "::" in t or t.count(":") >= 4, valid=_is_ipv6),
    "kr_rrn": _Rule("kr_rrn", _RRN_RE, lambda t: _HAS_DIGIT(t) is not None, rrn_valid),
    "us_ssn": _Rule("us_ssn", _SSN_RE, lambda t: "-" in t),
    "uk_nino": _Rule("uk_nino", _NINO_RE, lambda t: _HAS_DIGIT(t) is not None, _nino_issuable),
    "credit_card": _Rule("credit_card", _CARD_RE, lambda t: _HAS_DIGIT(t) is not None, _is_card),
    "bank_account": _Rule(
        "bank_account",
        _ACCOUNT_RE,
        lambda t: "계좌" in t or "ccount" in t or "CCOUNT" in t,
        group=2,
    ),
    "phone": _Rule("phone", _PHONE_RE, lambda t: _HAS_DIGIT(t) is not None, _is_phone),
}


# The prefilter: per rule, patterns of which at least one matches inside every match of the
# rule's regex (the regex with its lookarounds and validators dropped and its repeats cut to
# their minimum, so they can only match more). Checking output for *residual* PII (the gate)
# runs :func:`scrub` only on text that :func:`may_contain_pii` accepts. Text it rejects has no
# match for any rule's regex, so the first rule leaves it unchanged, and so does the next:
# every rule sees the original text and ``scrub`` finds nothing. Change a rule's regex, change
# its entry here; tests/freshlm/curation/test_pii_prefilter.py checks each rule against it.
#
# Every pattern starts with ``\d`` or with one literal character, so that they assemble into
# two regexes that Python's engine can scan fast (it skips ahead to the characters a match can
# start with): one for the digit-led patterns and one for the rest. Case-insensitive keywords
# start with their letter in both cases: under IGNORECASE, "a" matches only "a" and "A" (the
# only non-ASCII letters that fold to ASCII are İ, ı, ſ and K: i, s and k).
PREFILTERS: dict[str, tuple[str, ...]] = {
    # ?|&|; then a secret parameter name and "=", case-insensitive like the rule.
    "url_secret": tuple(rf"{c}(?i:{_SECRET_PARAMS})=" for c in (r"\?", "&", ";")),
    # Handles and e-mail addresses: an "@" followed by a letter, digit or "_".
    "handle": (r"@[A-Za-z0-9_]",),
    "email": (r"@[A-Za-z0-9_]",),
    # Four dot-separated groups of 1-3 digits: the end of the first, two whole, one digit.
    "ip": (r"\d\.\d{1,3}\.\d{1,3}\.\d",),
    # At least two colons with 0-4 hex digits between them.
    "ipv6": (r":[0-9A-Fa-f]{0,4}:",),
    # 6 digits, an optional hyphen or space, 7 digits.
    "kr_rrn": (r"\d\d{5}[- ]?\d{7}",),
    # 3 digits, a hyphen, 2 digits, a hyphen, 4 digits (so an ISO date never passes).
    "us_ssn": (r"\d\d{2}-\d{2}-\d{4}",),
    # The number's six digits (optionally in pairs) and the suffix letter.
    "uk_nino": (r"\d\d ?\d\d ?\d\d ?[A-D]",),
    # 13 digits, each after the first optionally after one space or hyphen.
    "credit_card": (r"\d(?:[ -]?\d){12}",),
    # The keyword the rule's regex starts with, case-insensitive like the rule.
    "bank_account": ("계좌", "a(?i:ccount)", "A(?i:ccount)"),
    # Each phone format, cut to a part every number of that format has.
    "phone": (
        r"\+\d",  # international
        r"\d-\d{3,4}-\d",  # Korean with hyphens
        r"\d1[016789]\d{7}",  # Korean mobile without separators (01x + 7 digits)
        r"\d\d{2,4} \d{3}",  # UK national (0 + 2-4 digits, a space, 3 digits)
        r"\(\d{3}\)",  # North American with the area code in parentheses
        r"\d\d{2}[-.]\d{3}[-.]\d",  # North American with separators
    ),
}
if set(PREFILTERS) != set(_RULES):  # pragma: no cover - a rule added without its prefilter
    raise RuntimeError(f"PREFILTERS must cover every rule: {sorted(set(_RULES) ^ set(PREFILTERS))}")


def _prefilter_regexes() -> tuple[re.Pattern[str], re.Pattern[str]]:
    patterns = list(dict.fromkeys(p for ps in PREFILTERS.values() for p in ps))
    tails = [p[2:] for p in patterns if p.startswith(r"\d")]
    others = [p for p in patterns if not p.startswith(r"\d")]
    for p in others:
        # One literal character first (or an escaped punctuation mark), so the engine can
        # skip ahead to it.
        literal = p[0] not in ".^$*+?{}[]|()\\" or (p[0] == "\\" and not p[1].isalnum())
        if not literal:  # pragma: no cover - a pattern added in the wrong shape
            raise RuntimeError(f"prefilter {p!r} must start with \\d or one literal character")
    return re.compile(rf"\d(?:{'|'.join(tails)})"), re.compile("|".join(others))


_DIGIT_PREFILTER, _OTHER_PREFILTER = _prefilter_regexes()
#: The prefilter as two regexes (digit-led patterns, the rest). Neither matching means
#: :func:`scrub` finds no PII of any type.
PII_PREFILTERS: tuple[re.Pattern[str], re.Pattern[str]] = (_DIGIT_PREFILTER, _OTHER_PREFILTER)


def may_contain_pii(text: str) -> bool:
    """False only if :func:`scrub` would find nothing in ``text`` (for any ``types``); True
    means it might (run ``scrub`` to know)."""
    return _DIGIT_PREFILTER.search(text) is not None or _OTHER_PREFILTER.search(text) is not None


def detect_pii(text: str, types: tuple[str, ...] = tuple(PLACEHOLDERS)) -> dict[str, int]:
    """What :func:`scrub` would find in ``text`` (count per type), skipping the scrub when the
    prefilter rules PII out: always ``scrub(text, types)[1]``, much faster on clean text."""
    if _DIGIT_PREFILTER.search(text) is None and _OTHER_PREFILTER.search(text) is None:
        return {}
    return scrub(text, types)[1]


def scrub(text: str, types: tuple[str, ...] = tuple(PLACEHOLDERS)) -> tuple[str, dict[str, int]]:
    """``text`` with PII of ``types`` replaced by placeholders, and the count per type."""
    found: dict[str, int] = {}
    for name in types:
        rules = (_RULES["ip"], _RULES["ipv6"]) if name == "ip" else (_RULES[name],)
        for rule in rules:
            text, n = rule.apply(text)
            if n:
                found[rule.kind] = found.get(rule.kind, 0) + n
    return text, found
