"""Reading the candidate's files: values as written, clear errors, the quarantine's columns."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from expectations import frames
from tests.expectations import batches as b


def _write(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def test_a_jsonl_file_reads_like_the_dicts_it_holds(tmp_path: Path) -> None:
    docs = b.clean_batch()[:5]
    docs[0]["language_score"] = 0.8874  # read_json's fast float parser gave 0.8874000000000001
    docs[1]["text"] += " line\u2028separator and \u2029 paragraph separator"
    docs[2]["title"] = None
    lines = [json.dumps(d, ensure_ascii=False) for d in docs]
    path = _write(tmp_path / "train.jsonl.gz", [lines[0], "", *lines[1:], "  "])
    from_file = frames.load_documents(path)
    from_dicts = frames.load_documents(docs)
    assert list(from_file.columns) == list(from_dicts.columns)
    assert (from_file.dtypes == from_dicts.dtypes).all()
    assert from_file.to_dict(orient="records") == from_dicts.to_dict(orient="records")
    assert from_file.loc[0, "language_score"] == 0.8874
    assert from_file["text"].dtype == object  # values as written, not pandas' str dtype


def test_several_files_and_an_empty_one_concatenate(tmp_path: Path) -> None:
    docs = b.clean_batch()[:4]
    one = _write(tmp_path / "train.jsonl", [json.dumps(d) for d in docs[:3]])
    two = _write(tmp_path / "heldout.jsonl.gz", [json.dumps(docs[3])])
    empty = tmp_path / "none.jsonl.gz"
    empty.write_bytes(gzip.compress(b""))
    frame = frames.load_documents([one, empty, two])
    assert frame["id"].tolist() == [d["id"] for d in docs]
    assert frames.load_documents(empty).empty
    (tmp_path / "zero.jsonl").write_bytes(b"")
    assert frames.load_documents(tmp_path / "zero.jsonl").empty


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": "a"}\n{"id": \n', "line 2"),
        (b'{"id": "a"}\n[1, 2]\n', "line 2 is a list"),
        (b"\xff\xfe not utf-8\n", "not JSON lines"),
    ],
)
def test_a_file_that_is_not_json_lines_is_a_clear_error(tmp_path, content, message) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        frames.load_documents(path)


def test_a_gz_name_on_plain_bytes_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(b'{"id": "a"}\n')
    with pytest.raises(ValueError, match="not readable as gzip JSON lines"):
        frames.load_documents(path)
    with pytest.raises(FileNotFoundError):
        frames.load_documents(tmp_path / "missing.jsonl.gz")


def test_the_quarantine_is_read_for_its_source_and_reason_only(tmp_path: Path) -> None:
    dropped = [dict(d, reason="dedup:exact", detail="") for d in b.clean_batch()[:3]]
    dropped[2].pop("reason")
    path = _write(tmp_path / "quarantine.jsonl.gz", [json.dumps(d) for d in dropped])
    for source in (path, dropped):
        frame = frames.load_documents(source, columns=frames.QUARANTINE_COLUMNS)
        assert list(frame.columns) == ["source", "reason"]
        assert len(frame) == 3
        assert frames.quarantine_by_reason(frame) == {"dedup:exact": 2, "unknown": 1}
    frame = frames.load_documents(pd.DataFrame(dropped), columns=frames.QUARANTINE_COLUMNS)
    assert list(frame.columns) == ["source", "reason"]
