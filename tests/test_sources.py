"""Source accounting: bad rows are rejected with file, row and reason; in = accepted + rejected."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_align.data.sources import SourceError, load_source

GOOD = {"id": "a", "prompt": "What is 2+2?", "response": "4", "context": ["2+2 is 4."]}


def write_jsonl(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_bad_rows_are_rejected_with_reasons(tmp_path):
    path = tmp_path / "src.jsonl"
    rows = [
        json.dumps(GOOD).encode(),                                        # 0 ok
        json.dumps({**GOOD, "id": "b", "prompt": "   "}).encode(),        # 1 empty prompt
        json.dumps({"id": "c", "prompt": "q"}).encode(),                  # 2 no response
        json.dumps({**GOOD, "id": "a"}).encode(),                         # 3 duplicate id
        b'{"id": "d", "prompt": "caf\xe9", "response": "x"}',             # 4 not UTF-8
        b'{"id": "e", "prompt": ',                                        # 5 invalid JSON
        json.dumps({**GOOD, "id": "f", "context": "not a list"}).encode(),  # 6 bad context
        json.dumps({"prompt": "q", "response": "r"}).encode(),            # 7 no id
        json.dumps({"id": "g", "messages": [{"role": "user", "content": "hi"},
                                            {"role": "assistant", "content": "hello"}]}).encode(),
        json.dumps({"id": 7, "prompt": "p", "chosen": "c", "rejected": "r"}).encode(),  # 9 ok
        b"",                                                              # 10 blank line
        json.dumps([1, 2]).encode(),                                      # 11 not an object
    ]
    write_jsonl(path, rows)
    accepted, rejects = load_source(path)
    assert len(accepted) + len(rejects) == len(rows)
    assert [a["id"] for a in accepted] == ["a", "g", "7"]
    assert accepted[1]["prompt"] == "hi" and accepted[1]["chosen"] == "hello"
    assert accepted[2]["rejected"] == "r" and accepted[0]["context"] == ["2+2 is 4."]
    reasons = {r["row"]: r["reason"] for r in rejects}
    assert all(r["file"] == str(path) and r["stage"] == "source" for r in rejects)
    assert "empty field 'prompt'" in reasons[1]
    assert "missing field 'chosen' or 'response'" in reasons[2]
    assert "duplicate id 'a' (first at row 0)" in reasons[3]
    assert "not UTF-8" in reasons[4]
    assert "invalid JSON" in reasons[5]
    assert "field 'context'" in reasons[6]
    assert "missing field 'id'" in reasons[7]
    assert "blank line" in reasons[10]
    assert "not an object" in reasons[11]


def test_parquet_source(tmp_path):
    path = tmp_path / "src.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD, {**GOOD, "id": "b", "response": ""}]), path)
    accepted, rejects = load_source(path)
    assert [a["id"] for a in accepted] == ["a"]
    assert rejects[0]["row"] == 1 and "empty field 'chosen'" in rejects[0]["reason"]


def test_unusable_sources_raise_naming_the_file(tmp_path):
    with pytest.raises(SourceError, match="nope.jsonl"):
        load_source(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [b"{}", b"[]"])
    with pytest.raises(SourceError, match=r"no valid row in .*bad.jsonl \(2 rejected\)"):
        load_source(bad)
