"""Hand-made documents and helpers for the curation tests."""

from __future__ import annotations

from typing import Any

from freshlm.curation.steps.base import Doc


def make_doc(text: str, *, kind: str = "news", doc_id: str | None = None, **extra: Any) -> Doc:
    """A document as intake produces it (every contract field present)."""
    import hashlib

    doc_id = doc_id or hashlib.sha256(text.encode()).hexdigest()[:32]
    doc: Doc = {
        "id": doc_id,
        "source": "test",
        "kind": kind,
        "url": f"https://example.org/{doc_id}",
        "title": None,
        "text": text,
        "language": "en",
        "language_score": 1.0,
        "published_at": "2026-11-02T08:00:00Z",
        "fetched_at": "2026-11-02T09:00:00Z",
        "author": None,
        "content_hash": "",
        "n_chars": 0,
        "n_words": 0,
        "pii": {},
        "toxicity": 0.0,
        "split": "train",
        "shard": "",
        "meta": {},
    }
    doc.update(extra)
    return doc


def run_step(step: Any, docs: list[Doc]) -> tuple[list[Doc], list[Doc]]:
    """(kept, dropped) after running ``step`` alone with a list as quarantine."""
    dropped: list[Doc] = []
    step.bind_quarantine(dropped.append)
    return list(step(docs)), dropped


# An ordinary English news article: long enough for every web-page rule.
ARTICLE = (
    "Orrin Labs launched the Pulse X2 on Monday at its headquarters in Tessford. The phone "
    "costs $649 and goes on sale on November 13 in three colours.\n\n"
    "The company said the battery holds 5,200 mAh, which is the largest it has ever put in a "
    "phone. Reviewers who tried it at the launch said it lasted two full days with normal use.\n\n"
    "Sorim Electronics, the rival maker from Haeon, is expected to answer with its own update "
    "later this month. Analysts at Harrow and Finch said the launch would help Orrin win back "
    "buyers who had moved to the Wave 5 last year.\n\n"
    "The Pulse X2 also comes with a 30-month warranty, longer than any other phone sold in the "
    "valley. Shops in the Old Town have already started taking pre-orders from customers."
)

KOREAN_ARTICLE = (
    "해온시는 한국 남해안에 자리한 항구 도시로, 인구는 약 65만 명이다. 도시의 중심에는 컨테이너 "
    "항구가 있고, 항구 뒤로는 낮은 산과 오래된 골목이 이어진다.\n\n"
    "해온은 1994년부터 테스퍼드와 자매도시 관계를 맺고 있다. 처음에는 목재와 기계 부품을 "
    "사고파는 해운 교류로 시작했지만, 지금은 해마다 약 200명의 학생이 "
    "두 도시를 오가며 공부한다.\n\n"
    "해온의 대표 음식은 생선구이와 어묵탕이다. 겨울이면 항구 시장 골목마다 호떡과 군고구마를 "
    "파는 노점이 늘어선다."
)


# (text, PII type, placeholder): what the scrubber must scrub, one or more per type and format.
SCRUBBED_SAMPLES = [
    ("mail me at dana.whitfield@courier.example today", "email", "<EMAIL>"),
    ("call +44 20 7946 0958 now", "phone", "<PHONE>"),
    ("call +1 (415) 555-0134 now", "phone", "<PHONE>"),
    ("ring 07700 900123 tonight", "phone", "<PHONE>"),
    ("연락은 010-1234-5678 로", "phone", "<PHONE>"),
    ("사무실 02-123-4567 로", "phone", "<PHONE>"),
    ("문자 01012345678 주세요", "phone", "<PHONE>"),
    ("US (555) 123-4567 or 555-123-4567", "phone", "<PHONE>"),
    ("server at 203.0.113.42 is down", "ip", "<IP>"),
    ("v6 2001:db8::8a2e:370:7334 is down", "ip", "<IP>"),
    ("card 4111 1111 1111 1111 ok", "credit_card", "<CREDIT_CARD>"),
    ("card 4111-1111-1111-1111 ok", "credit_card", "<CREDIT_CARD>"),
    ("amex 378282246310005 ok", "credit_card", "<CREDIT_CARD>"),
    ("cc @mira@tessford.social please", "handle", "<HANDLE>"),
    ("see https://x.example/a?id=5&token=abc123XYZ for it", "url_secret", "<SECRET>"),
    ("see https://x.example/a?api_key=ZZZ&sig=q1w2 for it", "url_secret", "<SECRET>"),
    ("계좌는 신한 110-234-567890 김민지", "bank_account", "<BANK_ACCOUNT>"),
    ("주민등록번호 900101-1234568 확인", "kr_rrn", "<NATIONAL_ID>"),
    ("외국인등록번호 7508255123451 입니다", "kr_rrn", "<NATIONAL_ID>"),
    ("SSN 123-45-6789 on file", "us_ssn", "<NATIONAL_ID>"),
    ("NI number QQ123456C is a sample, AB 12 34 56 C is not", "uk_nino", "<NATIONAL_ID>"),
]
