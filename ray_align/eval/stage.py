"""The evaluate stage: every configured benchmark, every model, every language, streamed.

Per benchmark (`eval/benchmarks/`): its rows come from Ray Data readers, RAG rows retrieve
their passages (one shared index), then every model answers (generation, or continuation
log-likelihoods for multiple choice) in one actor pool holding them all (or, generating with
`evaluate.generator: vllm`, one `ray.data.llm` engine per model), in one streaming pass
whose rows carry every model's answer; Ray Data writes them to `<out>/<benchmark>/predictions/`,
and the driver only gets counts (`aggregate.py`): per-language accuracy with intervals, recall@k,
answer-language fidelity, gap to English, consistency, and paired differences between models.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ray_align.config import BenchmarkSpec, Config, ConfigError
from ray_align.data.buckets import buckets_for
from ray_align.data.schema import Split
from ray_align.data.tally import total
from ray_align.eval import aggregate, report, vllm_generation
from ray_align.eval.benchmarks import Benchmark, get_benchmark
from ray_align.eval.fidelity import get_judge
from ray_align.eval.generation import Generator
from ray_align.eval.loglik import LoglikScorer
from ray_align.eval.retrieval import Retriever, build_index
from ray_align.runtime import StageResult, init_ray
from ray_align.workdir import require

if TYPE_CHECKING:
    import ray.data


def benchmark_of(spec: BenchmarkSpec, cfg: Config, split: Split) -> Benchmark:
    """The adapter of `spec`; `rag` defaults to the translate stage's groups of `split`, the
    configured languages and `evaluate.per_lang` groups."""
    cls = get_benchmark(spec.name)
    if spec.name != "rag":
        return cls(spec.path, spec.langs, spec.limit, **spec.options)
    t = cfg.translate
    path = spec.path or str(require(cfg.paths.translate.groups, "translate"))
    return cls(path, spec.langs or cfg.langs.all, spec.limit or cfg.evaluate.per_lang,
               split=split, test_fraction=t.test_fraction,
               validation_fraction=t.validation_fraction, **spec.options)


class Answerer:
    """Ray Data actor: every model of the evaluation, each answering every row (generating, or
    scoring the choices' log-likelihoods); adds each model's new columns as `<column>/<model>`.
    One pool holds all the models, so its actors never wait on another pool's."""

    def __init__(self, models: dict[str, str], kind: str, max_new_tokens: int, max_len: int,
                 nll: bool = False) -> None:
        def scorer(path: str) -> Any:
            if kind == "generate":
                return Generator(path, max_new_tokens, max_len, nll)
            return LoglikScorer(path, max_len, kind)

        self.scorers = {name: scorer(path) for name, path in models.items()}

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = batch
        for name, scorer in self.scorers.items():
            answered = scorer(batch)
            for column in answered.column_names[batch.num_columns:]:
                out = out.append_column(f"{column}/{name}", answered[column])
        return out


def score_generated(batch: pa.Table, bench: Benchmark, judge: str | None,
                    langs: tuple[str, ...], models: list[str]) -> pa.Table:
    """Each model's generated `prediction/<m>` -> `correct/<m>` by the benchmark's rule, and
    the answer-language judge's verdict `fidelity/<m>` (same / other / none) when judged."""
    targets, row_langs = batch["target"].to_pylist(), batch["lang"].to_pylist()
    judged = get_judge(judge, langs) if judge is not None else None
    for m in models:
        preds = batch[f"prediction/{m}"].to_pylist()
        batch = batch.append_column(f"correct/{m}", pa.array(
            [bench.correct(p, t) for p, t in zip(preds, targets, strict=True)], pa.bool_()))
        if judged is not None:
            batch = batch.append_column(f"fidelity/{m}", pa.array(
                [judged(p, lang) for p, lang in zip(preds, row_langs, strict=True)],
                pa.string()))
    return batch


def no_hit(batch: pa.Table) -> pa.Table:
    return batch.append_column("hit", pa.nulls(batch.num_rows, pa.bool_()))


def answered(bench: Benchmark, models: dict[str, str], cfg: Config, judge: str | None
             ) -> ray.data.Dataset:
    """The benchmark's rows with every model's answer: `prediction/<m>`, `correct/<m>` (and
    `fidelity/<m>` and with `evaluate.target_nll` `nll/<m>`, or `logliks/<m>`), plus `hit`
    (recall@k; null without retrieval)."""
    import ray

    e, pool = cfg.evaluate, ray.data.ActorPoolStrategy(size=cfg.evaluate.concurrency)
    try:
        ds = bench.rows()
    except ValueError as err:  # a missing file, language or column: the user's to fix
        raise ConfigError(f"evaluate.benchmarks: {bench.name}: {err}") from None
    if bench.retrieval:  # retrieved first (a benchmark-sized set), its actors then released
        index = ray.remote(build_index).remote(bench.path)  # embedded once, shared
        ds = ds.map_batches(Retriever, fn_constructor_kwargs={"index": index, "k": e.k},
                            batch_size=e.batch_size, batch_format="pyarrow",
                            compute=pool).materialize()
    else:
        ds = ds.map_batches(no_hit, batch_format="pyarrow")
    if bench.kind == "generate" and e.generator == "vllm":
        for name, path in models.items():  # one engine per model, each streaming its answers
            ds = vllm_generation.generate(ds, name, path, e.vllm_options(), e.max_new_tokens)
    else:
        ds = ds.map_batches(Answerer, fn_constructor_kwargs={
            "models": models, "kind": bench.kind, "max_new_tokens": e.max_new_tokens,
            "max_len": cfg.model.max_len, "nll": e.target_nll}, batch_size=e.batch_size,
            batch_format="pyarrow", **cfg.model.actor_resources(),
            compute=pool)
    if bench.kind != "generate":
        return ds
    return ds.map_batches(score_generated, fn_kwargs={
        "bench": bench, "judge": judge, "langs": tuple(cfg.langs.all), "models": list(models)},
        batch_format="pyarrow")


def fidelity_judge(cfg: Config, bench: Benchmark) -> str | None:
    if not bench.judged:
        return None
    if cfg.evaluate.fidelity != "auto":
        return cfg.evaluate.fidelity
    return "cldr" if cfg.source.path is None and bench.name == "rag" else "langid"


def evaluate_benchmark(bench: Benchmark, models: dict[str, str], cfg: Config, out: Path,
                       meta: dict[str, Any], consistency: bool = True) -> dict[str, Any]:
    """Answer, write and score one benchmark into `out`; returns its report's outputs.
    `consistency`: also the agreement with the anchor (one group-by on the item id)."""
    import ray.data

    judge, names = fidelity_judge(cfg, bench), list(models)
    predictions = out / "predictions"
    shutil.rmtree(predictions, ignore_errors=True)
    answered(bench, models, cfg, judge).write_parquet(str(predictions))
    written = ray.data.read_parquet(str(predictions))
    counts = aggregate.joint_counts(written, names, judge is not None)
    if not counts:
        raise ConfigError(f"evaluate.benchmarks: {bench.name} has no rows to evaluate "
                          f"({bench.path})")
    anchor, seen = cfg.langs.anchor, {key[0] for key in counts}
    # consistency with the anchor language: only where it and another language were evaluated
    consistency = consistency and anchor in seen and len(seen) > 1
    n = sum(counts.values())
    agreement = None
    if consistency:
        buckets = buckets_for(n, cfg.evaluate.bucket_rows)
        rows = ray.data.read_parquet(str(predictions), override_num_blocks=buckets)
        agreement = aggregate.consistency_counts(rows, names, anchor, out / "_buckets", buckets)
        shutil.rmtree(out / "_buckets")
    ci = cfg.evaluate.interval, cfg.evaluate.bootstrap_iters
    results = aggregate.per_language(counts, names, judge is not None, anchor,
                                     cfg.langs.all, agreement, *ci)
    if bench.kind == "generate" and cfg.evaluate.target_nll:
        for m in names:
            for lang, nll in aggregate.lang_sums(written, f"nll/{m}").items():
                results[m][lang]["nll"] = nll / results[m][lang]["n"]
    langs = list(results[names[0]])
    diffs = (aggregate.paired(counts, names, judge is not None, langs, ci[1])
             if len(names) > 1 else {})
    meta = meta | {"benchmark": bench.name, "kind": bench.kind, "path": bench.path,
                   "questions": n, "fidelity_judge": judge, "langs": langs, "anchor": anchor,
                   "interval": ci[0],
                   "heldout": [lang for lang in cfg.langs.heldout if lang in langs]}
    if bench.kind == "generate" and cfg.evaluate.generator == "vllm":
        meta["engine_errors"] = {m: total(written, f"engine_errors/{m}") for m in names}
    summaries = aggregate.groups(results, anchor, cfg.langs.heldout, *ci)
    outputs = report.write(results, out, langs, anchor, cfg.langs.heldout, meta, diffs,
                           summaries)
    print(f"[evaluate] {bench.name}: {n} questions in {len(langs)} languages\n\n"
          f"{outputs['table']}\n\n(report: {outputs['report']})\n", flush=True)
    for name, scores in results.items():
        print(f"[evaluate] {bench.name} {name}: " + " ".join(
            f"{lang} {100 * s['accuracy']:.0f}" for lang, s in scores.items()), flush=True)
    return outputs


def run_evaluate(cfg: Config, models: dict[str, str], out: Path | None = None,
                 split: Split = "test", consistency: bool = True) -> StageResult:
    """Evaluate each named model (HF path) on every configured benchmark (`evaluate.benchmarks`;
    RAG on the `split` groups) into `out/<benchmark>/` (default `eval/`)."""
    init_ray(cfg.ray)
    t0, out = time.time(), out or cfg.paths.eval
    meta = {"split": split, "k": cfg.evaluate.k, "models": models}
    print(f"[evaluate] models: {', '.join(models)}; benchmarks: "
          f"{', '.join(b.name for b in cfg.evaluate.benchmarks)}", flush=True)
    outputs: dict[str, Any] = {}
    for spec in cfg.evaluate.benchmarks:
        bench = benchmark_of(spec, cfg, split)
        done = evaluate_benchmark(bench, models, cfg, out / bench.name, meta, consistency)
        outputs |= {f"{bench.name}/{k}": v for k, v in done.items()}
        if "results" not in outputs:  # the first benchmark's are the stage's own
            outputs |= done
    counts = {"benchmarks": len(cfg.evaluate.benchmarks), "seconds": round(time.time() - t0, 1)}
    return StageResult("evaluate", outputs, counts).save(out)
