"""The evaluate stage: per-language RAG accuracy of one or more models on the test groups."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ray_align.config import Config
from ray_align.data.groups import read_groups
from ray_align.data.schema import Split, split_of
from ray_align.eval import report
from ray_align.eval.fidelity import get_judge
from ray_align.eval.generation import Generator
from ray_align.eval.paired import paired
from ray_align.eval.retrieval import Retriever, build_index
from ray_align.eval.scoring import exact_match, per_language
from ray_align.runtime import StageResult, init_ray
from ray_align.workdir import require


def eval_rows(cfg: Config, split: Split = "test") -> tuple[list[dict], list[str]]:
    """(questions, retrieval corpus): the first `per_lang` groups of `split` that have every
    language, one row per group and language; the corpus is every distinct English context
    passage."""
    langs = cfg.langs.all
    groups = read_groups(require(cfg.paths.translate.groups, "translate"))
    corpus = sorted({p for g in groups for p in (g["variants"][0]["context"] or [])})
    t = cfg.translate
    test = [g for g in groups
            if split_of(g["group_id"], t.test_fraction, t.validation_fraction) == split
            and set(langs) <= {v["lang"] for v in g["variants"]}][: cfg.evaluate.per_lang]
    rows = []
    for g in test:
        anchor = g["variants"][0]
        relevant = [p for p in anchor["context"] or [] if anchor["chosen"] in p]
        for v in g["variants"]:
            if v["lang"] in langs:
                rows.append({"group_id": g["group_id"], "lang": v["lang"], "question": v["prompt"],
                             "answer": v["chosen"], "relevant": relevant})
    return rows, corpus


def score_batch(batch: pa.Table, judge: str, langs: tuple[str, ...]) -> pa.Table:
    """Exact match, and the answer-language judge's verdict (`fidelity`)."""
    rows, judged = batch.to_pylist(), get_judge(judge, langs)
    for r in rows:
        r["correct"] = exact_match(r["prediction"], r["answer"])
        r["fidelity"] = judged(r["prediction"], r["lang"])
    return pa.Table.from_pylist(rows)


def fidelity_judge(cfg: Config) -> str:
    if cfg.evaluate.fidelity != "auto":
        return cfg.evaluate.fidelity
    return "cldr" if cfg.source.path is None else "langid"


def run_evaluate(cfg: Config, models: dict[str, str], out: Path | None = None,
                 split: Split = "test") -> StageResult:
    """Evaluate each named model (HF path) on every language of the `split` groups; write
    results, table and plot to `out` (default `eval/`)."""
    import ray

    init_ray(cfg.ray)
    t0, e = time.time(), cfg.evaluate
    out = out or cfg.paths.eval
    rows, corpus = eval_rows(cfg, split)
    judge = fidelity_judge(cfg)
    print(f"[evaluate] {len(rows)} questions ({len(rows) // len(cfg.langs.all)} per language), "
          f"{len(corpus)} passages, models: {', '.join(models)}", flush=True)
    index = ray.remote(build_index).remote(corpus)  # embedded once, shared by the actors
    retrieved = (
        ray.data.from_arrow(pa.Table.from_pylist(rows))
        .map_batches(Retriever, fn_constructor_kwargs={"index": index, "k": e.k},
                     batch_size=e.batch_size, batch_format="pyarrow",
                     compute=ray.data.ActorPoolStrategy(size=e.concurrency))
        .repartition(max(1, len(rows) // e.batch_size))
        .materialize()
    )
    results, predictions = {}, []
    for name, path in models.items():
        scored = retrieved.map_batches(
            Generator, fn_constructor_kwargs={"model": path, "max_new_tokens": e.max_new_tokens,
                                              "max_len": cfg.model.max_len},
            batch_size=e.batch_size, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=e.concurrency),
        ).map_batches(score_batch, fn_kwargs={"judge": judge, "langs": tuple(cfg.langs.all)},
                      batch_format="pyarrow")
        table = pa.concat_tables(ray.get(scored.to_arrow_refs())).drop_columns(["relevant"])
        df = table.select(["group_id", "lang", "correct", "hit", "fidelity"]).to_pandas()
        results[name] = per_language(df, cfg.langs.all, cfg.langs.anchor)
        predictions.append(table.append_column("model", pa.array([name] * table.num_rows)))
        print(f"[evaluate] {name}: " + " ".join(
            f"{lang} {100 * s['accuracy']:.0f}" for lang, s in results[name].items()), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    every = pa.concat_tables(predictions)
    pq.write_table(every, out / "predictions.parquet")
    meta = {"split": split, "k": e.k, "per_lang": len(rows) // len(cfg.langs.all), "models": models,
            "fidelity_judge": judge}
    diffs = paired(every.select(["model", "group_id", "lang", "correct"]).to_pandas(),
                   cfg.langs.all)
    outputs = report.write(results, out, cfg.langs.anchor, cfg.langs.train, cfg.langs.heldout,
                           meta, diffs)
    print(f"\nRAG exact-match accuracy (%) per language, {meta['per_lang']} questions each "
          f"(report: {outputs['report']})\n\n{outputs['table']}\n", flush=True)
    counts = {"questions": len(rows), "seconds": round(time.time() - t0, 1)}
    return StageResult("evaluate", outputs, counts).save(out)
