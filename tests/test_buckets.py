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


def test_consistency_counts_through_buckets_equal_a_count_by_hand(ray_local, tmp_path):
    """Evaluation's agreement with the anchor, grouped by item through files, over blocks that
    split items: the counts one would make by hand."""
    import random

    import ray.data

    from ray_align.eval.aggregate import consistency_counts

    rng = random.Random(0)
    rows = [{"id": f"q{i}", "lang": lang, "correct/a": rng.random() < 0.6,
             "correct/b": rng.random() < 0.4} for i in range(60)
            for lang in ("en", "de", "ja") if not (lang == "en" and i % 10 == 0)]
    rng.shuffle(rows)  # an item's languages in different blocks
    want: dict[tuple, int] = {}
    by_item: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_item.setdefault(r["id"], {})[r["lang"]] = r
    for langs in by_item.values():
        for m in ("a", "b"):
            for lang, r in langs.items():
                if "en" in langs:  # an item without the anchor counts nowhere
                    key = (lang, m, r[f"correct/{m}"] == langs["en"][f"correct/{m}"])
                    want[key] = want.get(key, 0) + 1
    got = consistency_counts(ray.data.from_items(rows, override_num_blocks=5), ["a", "b"],
                             "en", tmp_path / "scratch", buckets=3)
    assert got == want and sum(got.values()) == 2 * 3 * 54
