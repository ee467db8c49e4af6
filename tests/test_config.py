from pathlib import Path

import pytest

from ray_align.cli import main
from ray_align.config import ConfigError, load_config
from tests.conftest import DEMO


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("align:\n  steps: 7\n  batching:\n    mode: shuffled\n")
    cfg = load_config(
        path, ["align.batching.mix={de: 2, ja: 1}", "evaluate.k=3", "ray.address=auto"]
    )
    assert cfg.align.steps == 7
    assert cfg.align.batching.mode == "shuffled"
    assert cfg.align.batching.mix == {"de": 2.0, "ja": 1.0}
    assert cfg.evaluate.k == 3 and cfg.ray.address == "auto"
    assert cfg.langs.all[0] == "en" and len(cfg.langs.all) == 11


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["align.stepz=3"], "align.stepz"),
        (["align.batching.mode=sideways"], "align.batching.mode"),
        (["align.steps=-1"], "align.steps"),
        (["evaluate.k=many"], "evaluate.k"),
        (["langs.train=[en, de]"], "langs"),
        (["align.batching.include_anchor=false", "align.batching.langs_per_group=0"],
         "align.batching"),
        (["align.objectives=[orpo, nope]"], "align.objectives"),
        (["align.objectives=[orpo]", "align.options={orpo: {beta: -1}}"],
         "align.options.orpo.beta"),
        (["align.objectives=[consistency]", "align.options={consistency: {layr: 1}}"],
         "align.options.consistency.layr"),
        (["align.options={nope: {beta: 1}}"], "align.options"),
        (["align.loss_weights={orpo: 1, nope: 2}"], "align.loss_weights"),
        (["align.loss_weights=[1, 0.1]"], "align.loss_weights"),
        (["pairs.strategies={coin_flip: 1}"], "pairs.strategies"),
        (["search.space={align.stepz: {choice: [1, 2]}}"], "search.space.align.stepz"),
        (["search.space={align.steps: {choice: [10, -1]}}"], "search.space.align.steps"),
        (["search.space={align.lr: {loguniform: [0, 1]}}"], "search.space.align.lr"),
        (["search.space={align.lr: {uniform: [1, 0.1]}}"], "search.space.align.lr"),
        (["search.space={align.lr: {uniform: [0.1, 1], choice: [1]}}"], "search.space.align.lr"),
        (["search.space={align.lr: {normal: [0, 1]}}"], "search.space.align.lr"),
        (["search.space={seed.x: {choice: [1]}}"], "search.space.seed.x"),
        (["search.metric=loss"], "search.metric"),
        (["ray.shuffle_strategy=push"], "ray.shuffle_strategy"),
        (["evaluate.benchmarks=[{name: xnli, path: /x}]"], "evaluate.benchmarks.0"),
        (["evaluate.benchmarks=[{name: rag}, {name: mgsm}]"], "evaluate.benchmarks.1"),
        (["evaluate.benchmarks=[{name: mgsm, path: /x, limit: 0}]"],
         "evaluate.benchmarks.0.limit"),
        (["evaluate.benchmarks=[]"], "evaluate.benchmarks"),
        (["evaluate.benchmarks=[{name: rag}, {name: rag}]"], "evaluate"),
    ],
)
def test_bad_key_or_value_names_the_key(overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(None, overrides)


def test_bad_override_syntax_and_file(tmp_path):
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(None, ["align.steps"])
    with pytest.raises(ConfigError, match="seed"):
        load_config(None, ["seed.x=1"])
    with pytest.raises(ConfigError, match="not a section"):
        load_config(None, ["seed=1", "seed.x=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_demo_config_is_valid():
    cfg = load_config(DEMO)
    assert cfg.align.num_workers == 2 and cfg.align.zero_stage == 2


def test_cli_help_and_config_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "translate", "align", "evaluate", "pretrain", "world"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["align", "--help"])
    assert "--set" in capsys.readouterr().out
    assert main(["align", "--set", "align.nope=1"]) == 2
    assert "align.nope" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(Path(DEMO).parent.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    cfg = load_config(path)
    assert cfg.translate.backend_options() is not None


def test_validation_split_leaves_test_split_alone() -> None:
    """Adding a validation split moves groups out of train only: the test groups stay the
    same, and a sum of fractions that leaves nothing to train on is a config error."""
    from ray_align.data.schema import group_id, split_of

    gids = [group_id(str(i)) for i in range(5000)]
    before = [split_of(g, 0.1) for g in gids]
    after = [split_of(g, 0.1, 0.2) for g in gids]
    assert {b for b, a in zip(before, after, strict=True) if a == "test"} == {"test"}
    assert [a == "test" for a in after] == [b == "test" for b in before]
    moved = sum(a == "validation" for a in after) / len(gids)
    assert 0.17 < moved < 0.23 and {b for b, a in zip(before, after, strict=True)
                                    if a == "validation"} == {"train"}
    with pytest.raises(ConfigError, match="validation_fraction"):
        load_config(None, ["translate.validation_fraction=0.9"])


def test_inference_actors_ask_for_the_configured_gpus():
    root = Path(__file__).resolve().parents[1]
    assert load_config(None).model.actor_resources() == {}  # CPU: no GPU asked for
    for name in ("gpu-vllm-qwen7b.yaml", "gpu-nllb-qwen7b.yaml"):
        assert load_config(root / "configs" / name).model.actor_resources() == {"num_gpus": 1}
    with pytest.raises(ValueError, match="model.inference_gpus"):
        load_config(None, ["model.inference_gpus=-1"])
