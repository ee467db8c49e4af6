"""Source accounting in Ray Data: bad rows are rejected with file, row and reason; in = out."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_align.data import readers
from ray_align.data.discover import SourceError
from ray_align.data.schema import REJECT
from ray_align.data.sources import (
    ACCEPTED,
    check_source,
    read_source,
    require_rows,
    split_checked,
)

GOOD = {"id": "a", "prompt": "What is 2+2?", "response": "4", "context": ["2+2 is 4."]}


def write_jsonl(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def rows(records: list) -> list[bytes]:
    return [json.dumps(r).encode() for r in records]


def collect(path, **kwargs) -> tuple[list[dict], dict[tuple[str, int], str]]:
    """Accepted rows (by file, row) and reject reasons by (file, row), from one execution."""
    source = split_checked(check_source(path, **kwargs).materialize())
    accepted = sorted(source.accepted.take_all(), key=lambda r: (r["file"], r["row"]))
    rejects = source.rejects.take_all()
    assert all(r["stage"] == "source" for r in rejects)
    return accepted, {(r["file"], r["row"]): r["reason"] for r in rejects}


def test_bad_rows_are_rejected_with_reasons(ray_local, tmp_path):
    path = tmp_path / "src.jsonl"
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    lines = [
        json.dumps({**GOOD, "meta": {"n": 1}}).encode(),                  # 0 ok
        json.dumps({**GOOD, "id": "b", "prompt": "   "}).encode(),        # 1 empty prompt
        json.dumps({"id": "c", "prompt": "q"}).encode(),                  # 2 no response
        json.dumps({**GOOD, "id": "a"}).encode(),                         # 3 duplicate id
        b'{"id": "d", "prompt": "caf\xe9", "response": "x"}',             # 4 not UTF-8
        b'{"id": "e", "prompt": ',                                        # 5 truncated JSON
        json.dumps({**GOOD, "id": "f", "context": "not a list"}).encode(),  # 6 bad context
        json.dumps({"prompt": "q", "response": "r"}).encode(),            # 7 no id
        json.dumps({"id": "g", "messages": turns}).encode(),              # 8 ok (TRL messages)
        json.dumps({"id": 7, "prompt": "p", "chosen": "c", "rejected": "r"}).encode(),  # 9 ok
        b"",                                                              # 10 blank line
        json.dumps([1, 2]).encode(),                                      # 11 not an object
        json.dumps({**GOOD, "id": "h", "prompt": 42}).encode(),           # 12 wrong type
        b"{'id': 'i', " + b"x" * 2000 + b"}",                             # 13 malformed, long
        json.dumps({**GOOD, "id": "j", "prompt": "x" * 5000}).encode(),   # 14 too large
        b"   ",                                                           # 15 blank (spaces)
        json.dumps({"id": "k", "prompt": turns[:1], "chosen": turns[1:]}).encode(),  # 16 ok
        json.dumps({**GOOD, "id": "l", "prompt": "\ud800"}).encode(),     # 17 lone surrogate
    ]
    write_jsonl(path, lines)
    source = read_source(path, max_row_bytes=4000)
    accepted_ds, rejects_ds = source.accepted.materialize(), source.rejects.materialize()
    assert accepted_ds.schema().base_schema == ACCEPTED
    assert rejects_ds.schema().base_schema == REJECT
    accepted, rejects = accepted_ds.take_all(), rejects_ds.take_all()
    assert len(accepted) + len(rejects) == len(lines)
    by_id = {a["id"]: a for a in accepted}
    assert sorted(by_id) == ["7", "a", "g", "k"]
    assert {a["file"] for a in accepted} == {str(path)}
    assert [by_id[i]["row"] for i in ("a", "g", "7", "k")] == [0, 8, 9, 16]
    assert by_id["g"]["prompt"] == "hi" and by_id["g"]["chosen"] == "hello"
    assert by_id["k"]["prompt"] == "hi" and by_id["k"]["chosen"] == "hello"
    assert by_id["7"]["rejected"] == "r" and by_id["a"]["rejected"] is None
    assert by_id["a"]["context"] == ["2+2 is 4."] and by_id["g"]["context"] == []
    assert json.loads(by_id["a"]["meta"]) == {"n": "1"} and by_id["g"]["meta"] == "{}"
    assert all(r["file"] == str(path) and r["stage"] == "source" for r in rejects)
    assert all(len(r["record"]) <= 500 for r in rejects)
    reasons = {r["row"]: r["reason"] for r in rejects}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 17]
    assert "empty field 'prompt'" in reasons[1]
    assert "missing field 'chosen' or 'response'" in reasons[2]
    assert reasons[3] == f"duplicate id 'a' (first at {path} row 0)"
    assert "not UTF-8" in reasons[4] and "not UTF-8" in reasons[17]
    assert "invalid JSON" in reasons[5] and "invalid JSON" in reasons[13]
    assert "field 'context' must be a list of strings" in reasons[6]
    assert "missing field 'id'" in reasons[7]
    assert "blank line" in reasons[10] and "blank line" in reasons[15]
    assert "not an object" in reasons[11]
    assert "field 'prompt' must be a string, got int" in reasons[12]
    assert reasons[14].startswith("row too large (") and reasons[14].endswith(" > 4000)")


def test_split_lines_cuts_huge_lines_without_holding_them(monkeypatch):
    monkeypatch.setattr(readers, "READ_BYTES", 7)  # lines span many reads
    data = b"a\n" + b"x" * 5000 + b"\n\r\n" + b"y" * 11 + b"\nlast"
    got = list(readers.split_lines(io.BytesIO(data), max_row_bytes=11))
    assert got == [(b"a", 1), (b"x" * 500, 5000), (b"\r", 1), (b"y" * 11, 11), (b"last", 4)]
    assert list(readers.split_lines(io.BytesIO(b"a\n\n"), 10)) == [(b"a", 1), (b"", 0)]


def test_duplicates_across_shards_keep_the_first_file_row(ray_local, tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    first, second = folder / "part-0.jsonl", folder / "part-1.jsonl"
    write_jsonl(first, rows([GOOD, {**GOOD, "id": "b"}]))
    write_jsonl(second, [b"", *rows([{**GOOD, "id": "c"}, GOOD, {**GOOD, "id": "c"}])])
    (folder / "README.md").write_text("not data")
    accepted, reasons = collect(folder)
    assert len(accepted) + len(reasons) == 6
    assert [(a["id"], a["file"], a["row"]) for a in accepted] == [
        ("a", str(first), 0), ("b", str(first), 1), ("c", str(second), 1)]
    assert reasons == {
        (str(second), 0): "blank line",
        (str(second), 2): f"duplicate id 'a' (first at {first} row 0)",
        (str(second), 3): f"duplicate id 'c' (first at {second} row 1)",
    }


def test_parquet_file_and_folder_of_shards(ray_local, tmp_path):
    path = tmp_path / "src.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD, {**GOOD, "id": "b", "response": ""}]), path)
    folder = tmp_path / "pq"
    folder.mkdir()
    shard0, shard1 = folder / "0.parquet", folder / "1.parquet"
    pq.write_table(pa.Table.from_pylist([{**GOOD, "id": "x"}, {**GOOD, "id": None}]), shard0)
    pq.write_table(pa.Table.from_pylist(  # another schema: `chosen` and `rejected`
        [{"id": "y", "prompt": "p", "chosen": "c", "rejected": "r"},
         {"id": "x", "prompt": "p", "chosen": "c", "rejected": None}]), shard1)
    (folder / "_SUCCESS").write_text("")

    accepted, reasons = collect(path)
    assert [a["id"] for a in accepted] == ["a"]
    assert reasons == {(str(path), 1): "empty field 'chosen'"}

    accepted, reasons = collect(folder)
    assert [(a["id"], a["file"], a["row"], a["rejected"]) for a in accepted] == [
        ("x", str(shard0), 0, None), ("y", str(shard1), 0, "r")]
    assert reasons == {
        (str(shard0), 1): "missing field 'id'",
        (str(shard1), 1): f"duplicate id 'x' (first at {shard0} row 0)",
    }


def test_save_to_disk_folder_with_conversational_rows(ray_local, tmp_path):
    import datasets

    def turn(role, text):
        return [{"role": role, "content": text}]

    records = [
        {"id": str(i), "prompt": turn("user", f"q{i}"), "chosen": turn("assistant", f"a{i}"),
         "rejected": turn("assistant", f"r{i}")}
        for i in range(4)
    ]
    records[1]["chosen"] = turn("assistant", " ")
    records[3]["id"] = "0"
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(records).save_to_disk(str(folder), num_shards=2)
    shards = sorted(str(p) for p in folder.glob("*.arrow"))
    assert len(shards) == 2 and (folder / "state.json").is_file()

    accepted, reasons = collect(folder)
    assert [(a["id"], a["prompt"], a["chosen"], a["rejected"], a["file"], a["row"])
            for a in accepted] == [("0", "q0", "a0", "r0", shards[0], 0),
                                   ("2", "q2", "a2", "r2", shards[1], 0)]
    assert reasons == {
        (shards[0], 1): "empty field 'chosen'",
        (shards[1], 1): f"duplicate id '0' (first at {shards[0]} row 0)",
    }


def test_unusable_sources_raise_one_line_naming_the_path(tmp_path):
    def error(path) -> str:
        with pytest.raises(SourceError) as e:
            read_source(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)
        return str(e.value)

    assert error(tmp_path / "nope.jsonl") == f"source not found: {tmp_path / 'nope.jsonl'}"
    csv = tmp_path / "src.csv"
    csv.write_text("id,prompt\n")
    assert error(csv).startswith(f"cannot read source {csv}: unsupported format '.csv'")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not\n a parquet file")
    assert "corrupt.parquet is not a valid parquet file" in error(corrupt)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    assert error(empty).startswith(f"no readable file in source {empty}")
    require_rows(1, 5, "src.jsonl")
    with pytest.raises(SourceError, match=r"^no valid row in src.jsonl \(2 rejected\)$"):
        require_rows(0, 2, "src.jsonl")


def test_hub_id_reads_the_train_split(ray_local, monkeypatch):
    import datasets

    def load_dataset(name, *args, split=None, **kwargs):
        if name != "org/corpus":
            raise ConnectionError("offline\nsecond line")
        return datasets.Dataset.from_list([GOOD, {**GOOD, "id": "b", "prompt": ""}])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    accepted, reasons = collect("org/corpus")
    assert [(a["id"], a["file"], a["row"]) for a in accepted] == [("a", "org/corpus", 0)]
    assert reasons == {("org/corpus", 1): "empty field 'prompt'"}
    with pytest.raises(SourceError, match=r"^cannot read source org/other .*: offline$"):
        read_source("org/other")
