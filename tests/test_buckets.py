"""The group-by through files (`data/buckets.py`) and translate's group assembly on it."""

import pyarrow as pa

from ray_align.data.buckets import by_bucket
from ray_align.data.translate import assemble_groups


def test_each_key_reaches_one_call_whole(ray_local, tmp_path):
    import ray.data

    def per_key(rows: pa.Table, tag: str) -> pa.Table:  # (a closure: the workers get its code)
        """One row per key of a bucket: how many rows it had in this call."""
        ids = rows["id"].to_pylist()
        keys = sorted(set(ids))
        return pa.table({"id": keys, "n": [ids.count(k) for k in keys],
                         "tag": [tag] * len(keys)})

    rows = [{"id": f"k{i % 37}", "i": i} for i in range(500)]  # keys spread over 7 blocks
    parts = [ray.data.from_items(rows[:200], override_num_blocks=3),  # scattered in turn
             ray.data.from_items(rows[200:], override_num_blocks=4)]
    folder = tmp_path / "buckets"
    for _ in range(2):  # a rerun into the same folder (as after a kill) counts nothing twice
        out = by_bucket(parts, "id", per_key, folder, buckets=4, tag="x").take_all()
        assert sorted((r["id"], r["n"]) for r in out) == sorted(
            (f"k{k}", len(range(k, 500, 37))) for k in range(37))  # each key once, whole
        assert {r["tag"] for r in out} == {"x"}
    assert sorted(d.name for d in folder.iterdir()) == ["b0", "b1", "b2", "b3"]
    assert len(list(folder.rglob("*.parquet"))) == 4 * 7  # one per (block, bucket)


def test_a_bucket_becomes_one_group_per_source_id_anchor_first():
    def variant(sid: str, lang: str) -> dict:
        return {"id": sid, "lang": lang, "prompt": f"{sid}-{lang}", "chosen": "c",
                "rejected": None, "context": [], "quality": 1.0, "scores": None,
                "translator": "t", "file": "f", "row": 0}

    rows = pa.Table.from_pylist([variant("b", "ja"), variant("a", "de"), variant("b", "en"),
                                 variant("a", "en"), variant("b", "de")])
    groups = assemble_groups(rows, "en").to_pylist()
    assert [[v["lang"] for v in g["variants"]] for g in groups] == [["en", "de"],
                                                                    ["en", "de", "ja"]]
    assert [g["variants"][0]["prompt"] for g in groups] == ["a-en", "b-en"]
    assert all(g["anchor_lang"] == "en" and len(g["group_id"]) == 16 for g in groups)
