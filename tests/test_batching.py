"""Group integrity of batch composition, as properties over random groups and knobs."""

from collections import Counter

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ray_align.batching import plan_groups
from ray_align.config import BatchingConfig

LANGS = ["en", "de", "es", "ja", "hi", "sw"]


def make_groups(subsets: list[list[str]]) -> list[dict]:
    groups = []
    for i, others in enumerate(subsets):
        langs = ["en", *others]
        variants = [{"lang": lang, "prompt": f"q{i}-{lang}", "chosen": f"a{i}-{lang}",
                     "rejected": None, "context": [f"p{i}"]} for lang in langs]
        groups.append({"group_id": f"g{i:04d}", "anchor_lang": "en", "variants": variants})
    return groups


def units_of(plan):
    return [u for s in plan for rank in s["ranks"] for u in rank]


knobs = st.fixed_dictionaries({
    "subsets": st.lists(st.lists(st.sampled_from(LANGS[1:]), unique=True), min_size=4,
                        max_size=40),
    "groups_per_batch": st.integers(1, 6),
    "langs_per_group": st.integers(0, 4),
    "world": st.integers(1, 4),
    "include_anchor": st.booleans(),
    "seed": st.integers(0, 3),
})


def config(k: dict, mode: str) -> BatchingConfig:
    lpg = max(k["langs_per_group"], 0 if k["include_anchor"] else 1)
    return BatchingConfig(mode=mode, groups_per_batch=k["groups_per_batch"],
                          langs_per_group=lpg, include_anchor=k["include_anchor"])


@settings(max_examples=150, deadline=None)
@given(knobs)
def test_aligned_batches_hold_whole_groups_once_per_epoch(k):
    groups = make_groups(k["subsets"])
    cfg = config(k, "aligned")
    drawable = [g for g in groups if cfg.include_anchor or len(g["variants"]) > 1]
    assume(len(drawable) >= k["world"])
    plan = plan_groups(groups, cfg, LANGS, k["world"], 3 * len(groups), k["seed"])
    epoch0 = [s for s in plan if s["epoch"] == 0]
    # every step feeds every worker at least one unit
    assert all(all(rank for rank in s["ranks"]) and len(s["ranks"]) == k["world"] for s in plan)
    units = units_of(epoch0)
    # each group appears exactly once per epoch, across all workers
    ids = [u[0]["group_id"] for u in units]
    assert sorted(ids) == sorted(g["group_id"] for g in drawable)
    by_id = {g["group_id"]: g for g in groups}
    for u in units:
        # a unit is one whole group: one group id, distinct languages, anchor first if asked
        assert len({r["group_id"] for r in u}) == 1
        langs = [r["lang"] for r in u]
        assert len(set(langs)) == len(langs)
        assert (langs[0] == "en") == cfg.include_anchor
        available = len(by_id[u[0]["group_id"]]["variants"]) - 1
        assert len(langs) == min(cfg.langs_per_group, available) + cfg.include_anchor
    # same seed, same batches
    assert plan == plan_groups(groups, cfg, LANGS, k["world"], 3 * len(groups), k["seed"])


@settings(max_examples=150, deadline=None)
@given(knobs)
def test_shuffled_has_the_same_rows_and_shapes_without_the_groups(k):
    groups = make_groups(k["subsets"])
    aligned, shuffled = config(k, "aligned"), config(k, "shuffled")
    drawable = [g for g in groups if aligned.include_anchor or len(g["variants"]) > 1]
    assume(len(drawable) >= k["world"])
    steps = 2 * len(groups)
    a = plan_groups(groups, aligned, LANGS, k["world"], steps, k["seed"])
    s = plan_groups(groups, shuffled, LANGS, k["world"], steps, k["seed"])
    rows = lambda plan: Counter((r["group_id"], r["lang"]) for u in units_of(plan) for r in u)  # noqa: E731
    assert rows(a) == rows(s)  # the same multiset of rows
    shape = lambda plan: [[sum(map(len, rank)) for rank in st["ranks"]] for st in plan]  # noqa: E731
    assert shape(a) == shape(s)  # the same batch sizes on every worker and step
    assert s == plan_groups(groups, shuffled, LANGS, k["world"], steps, k["seed"])


def test_shuffled_breaks_groups_apart():
    groups = make_groups([["de", "es", "ja"]] * 64)
    cfg = BatchingConfig(mode="shuffled", groups_per_batch=4, langs_per_group=3)
    units = units_of(plan_groups(groups, cfg, LANGS, 2, 8, seed=0))
    split = sum(len({r["group_id"] for r in u}) > 1 for u in units)
    assert split > len(units) * 0.9


def test_mix_weights_steer_the_language_draw():
    groups = make_groups([["de", "es", "ja", "hi", "sw"]] * 200)
    cfg = BatchingConfig(groups_per_batch=4, langs_per_group=1, mix={"ja": 9.0, "de": 1.0})
    langs = Counter(r["lang"] for u in units_of(plan_groups(groups, cfg, LANGS, 2, 25, 0))
                    for r in u)
    assert set(langs) == {"en", "ja", "de"}
    assert langs["ja"] > 4 * langs["de"]
