"""National ids of the sources' countries: scrubbed by curation, refused by the gate.

Korean registration numbers (주민등록번호) count only with a real birth date and a right check
digit, so order numbers and other 13-digit strings are left alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from freshlm.curation.steps.pii import PIIStep
from freshlm.pii import detect_pii, rrn_valid, scrub
from tests.expectations import batches as b
from tests.expectations.test_gate import failed, gate
from tests.freshlm.curation.helpers import make_doc, run_step

# Valid: check digit (11 - Σ d·w mod 11) mod 10 with weights 2..9,2..5.
VALID_RRNS = ["900101-1234568", "850315-2345678", "7508255123451", "011231 4000003"]
# Same numbers with the last digit changed, an impossible date (2002-02-29), a month 13.
INVALID_RRNS = ["900101-1234567", "850315-2345670", "020229-4123451", "901301-1234565"]


@pytest.mark.parametrize("number", VALID_RRNS)
def test_a_korean_registration_number_with_a_right_check_digit_is_scrubbed(number):
    text, found = scrub(f"본인 확인용 주민등록번호 {number} 를 보내 주세요")
    assert found == {"kr_rrn": 1}
    assert number not in text and "<NATIONAL_ID>" in text


@pytest.mark.parametrize("number", INVALID_RRNS)
def test_a_number_whose_check_digit_or_date_is_wrong_is_left_alone(number):
    assert not rrn_valid(number)
    sentence = f"주문번호 {number} 배송 완료"
    assert scrub(sentence) == (sentence, {})
    assert detect_pii(sentence) == {}


def test_the_check_digit_rule():
    assert rrn_valid("9001011234568")
    assert not rrn_valid("9001011234569")
    assert not rrn_valid("900101123456")  # 12 digits


def test_us_and_uk_ids_are_scrubbed_and_never_issued_ones_are_not():
    text, found = scrub("SSN 123-45-6789, NI AB 12 34 56 C and AB123456D")
    assert found == {"us_ssn": 1, "uk_nino": 2}
    assert text == "SSN <NATIONAL_ID>, NI <NATIONAL_ID> and <NATIONAL_ID>"
    # Area 000/666/9xx, HMRC's never-issued prefixes and a lowercase lookalike stay as they are.
    for lookalike in ("000-12-3456", "666-12-3456", "912-34-5678", "GB 12 34 56 A", "ab123456c"):
        assert scrub(f"ref {lookalike} ok")[1] == {}, lookalike


def test_curation_scrubs_the_number_from_text_and_title_and_counts_it():
    doc = make_doc("연락처와 주민등록번호 900101-1234568 을 남겼다", title="SSN 123-45-6789 leaked")
    kept, dropped = run_step(PIIStep(), [doc])
    assert not dropped
    (out,) = kept
    assert "900101-1234568" not in out["text"] and "123-45-6789" not in out["title"]
    assert out["pii"] == {"kr_rrn": 1, "us_ssn": 1}


def test_the_gate_refuses_a_batch_with_an_unscrubbed_registration_number(tmp_path: Path):
    docs = b.clean_batch()
    docs[4]["text"] += " 주민등록번호 850315-2345678"
    docs[7]["text"] += " 주문번호 850315-2345670"  # wrong check digit: not PII, not a failure
    result = gate(tmp_path, docs)
    assert result.severity == "critical" and not result.passed
    (failure,) = failed(result, "residual_pii")
    assert failure["column"] == "residual_pii_kr_rrn"
    assert failure["examples"] == [docs[4]["id"]]
    assert "850315-2345678" not in result.to_json()
