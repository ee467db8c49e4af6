"""`ray-align`: one subcommand per stage, plus `demo` (the whole pipeline on the demo world)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ray_align.config import Config, ConfigError, load_config
from ray_align.data.discover import SourceError
from ray_align.runtime import StageResult


def _world(cfg: Config) -> StageResult:
    from ray_align.demo.stage import run_world

    return run_world(cfg)


def _translate(cfg: Config) -> StageResult:
    from ray_align.data.translate import run_translate
    from ray_align.demo.stage import world_source

    if cfg.source.path:
        return run_translate(cfg, cfg.source.path)
    if not world_source(cfg).exists():
        raise FileNotFoundError(f"{world_source(cfg)} is missing: run `ray-align world` first "
                                "(or set source.path)")
    return run_translate(cfg, str(world_source(cfg)))


def _pretrain(cfg: Config) -> StageResult:
    from ray_align.pretrain import run_pretrain

    return run_pretrain(cfg)


def _pairs(cfg: Config) -> StageResult:
    from ray_align.data.pairs import run_pairs
    from ray_align.pretrain import base_path

    return run_pairs(cfg, base_path(cfg))


def _align(cfg: Config) -> StageResult:
    from ray_align.align import run_align
    from ray_align.pretrain import base_path

    return run_align(cfg, base_path(cfg))


def _evaluate(cfg: Config) -> StageResult:
    from ray_align.eval.stage import run_evaluate
    from ray_align.pretrain import base_path

    models = {"base": base_path(cfg)}
    models |= {m: str(cfg.paths.align(m).model) for m in ("shuffled", "aligned")
               if cfg.paths.align(m).model.exists()}
    return run_evaluate(cfg, models)


def _search(cfg: Config) -> StageResult:
    from ray_align.pretrain import base_path
    from ray_align.tune import run_search

    return run_search(cfg, base_path(cfg))


def _pipeline(cfg: Config) -> StageResult:
    from ray_align.pipeline import run_pipeline

    return run_pipeline(cfg)


COMMANDS: dict[str, tuple[Callable[[Config], object], str]] = {
    "demo": (_pipeline, "the whole pipeline on the demo world (configs/demo.yaml by default)"),
    "pipeline": (_pipeline, "the whole pipeline on the configured source"),
    "world": (_world, "write the demo world's English source corpus (CLDR country facts)"),
    "translate": (_translate, "translate the source and write equivalence groups (Ray Data)"),
    "pretrain": (_pretrain, "build and pretrain the tiny base model (skipped if model.path)"),
    "pairs": (_pairs, "give every variant a rejected answer (preference pairs; Ray Data)"),
    "align": (_align, "fine-tune the base on batches of whole groups (Ray Train + DeepSpeed)"),
    "search": (_search, "Ray Tune trials over the language mix and alignment knobs, each "
                        "aligned and scored per language on the validation split"),
    "evaluate": (_evaluate, "base / shuffled / aligned on every configured benchmark "
                            "(evaluate.benchmarks; default the demo's RAG QA), per language"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ray-align",
        description="Batch-wise cross-lingual alignment of LLMs on Ray (arXiv 2509.23659).",
        epilog="Every subcommand takes --config FILE and any number of --set key.path=value, "
               "e.g. --set align.steps=50 --set ray.address=auto.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        config_arguments(sub.add_parser(name, help=help_text, description=help_text))
    text = "render and compare evaluated runs from their results.json (no Ray, no models)"
    rep = sub.add_parser("report", help=text, description=text)
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR",
                     help="a workdir, an evaluate output folder or one benchmark's folder")
    rep.add_argument("--out", default="report", help="output folder (default: ./report)")
    return p


def config_arguments(p: argparse.ArgumentParser, default: str | None = None
                     ) -> argparse.ArgumentParser:
    """`--config FILE` and repeatable `--set key.path=value`: every command and bench script."""
    p.add_argument("--config", default=default, help="YAML config file (see configs/demo.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override one config key (repeatable)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "report":
        from ray_align.eval.compare import run_report

        try:
            run_report(args.runs, args.out)
        except FileNotFoundError as e:
            print(f"ray-align: {e}", file=sys.stderr)
            return 2
        return 0
    config = args.config or ("configs/demo.yaml" if args.command == "demo" else None)
    try:
        cfg = load_config(config, args.overrides)
    except ConfigError as e:
        print(f"ray-align: {e}", file=sys.stderr)
        return 2
    try:
        COMMANDS[args.command][0](cfg)
    except (FileNotFoundError, FileExistsError, SourceError, ConfigError) as e:
        # a missing or unusable input, a clashing run, a config the stage cannot use: one
        # line, no traceback
        print(f"ray-align: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
