"""`tally`: counts by key over many blocks, equal to Ray Data's own group-by."""

import pyarrow as pa

from ray_align.data.tally import tally


def test_tally_equals_groupby_over_many_blocks(ray_local):
    n = 1000
    table = pa.table({"lang": [["de", "ja", None][i % 3] for i in range(n)],
                      "reason": [["", "empty"][i % 7 == 0] for i in range(n)],
                      "count": list(range(n))})
    ds = ray_local.data.from_arrow(table).repartition(13)
    expected = {(r["lang"], r["reason"]): r["count()"]
                for r in ds.groupby(["lang", "reason"]).count().take_all()}
    assert tally(ds, ["lang", "reason"]) == expected and sum(expected.values()) == n
    sums = tally(ds, ["lang"], total="count")
    assert sums == {(lang,): sum(i for i in range(n) if [["de", "ja", None][i % 3]] == [lang])
                    for lang in ("de", "ja", None)}
    assert all(isinstance(v, int) for v in sums.values())
    halves = tally(ds.map(lambda r: r | {"x": r["count"] / 2}), ["lang"], total="x")
    assert halves == {k: v / 2 for k, v in sums.items()}  # float sums stay floats
    assert tally(ds.filter(lambda r: False), ["lang"]) == {}
