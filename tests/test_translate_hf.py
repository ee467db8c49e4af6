"""The `hf` translation backend on tiny random models built here (no hub): the outputs are noise,
so these check the plumbing (language codes, padding, context limits, Ray Data), not quality."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ray_align.config import ConfigError, load_config
from ray_align.data.translators import Job, get_backend
from ray_align.data.translators.hf import HFOptions, HFTranslator, Loaded
from ray_align.data.translators.hf import translate as hf_step
from ray_align.data.translators.prompts import language_name
from ray_align.data.translators.texts import Untranslated

CORPUS = [
    "The capital of France is Paris.", "What is the capital of Germany?",
    "Berlin is the largest city of Germany.", "Which language is spoken in Japan?",
    "Translate the following text from English to German.", "Reply with the translation only.",
] * 20
LONG = "word " * 150  # over both tiny models' contexts
CHAT = ("{% for m in messages %}<s>user: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> SimpleNamespace:
    """(1) an NLLB-like seq2seq (M2M100 architecture, NllbTokenizer with the FLORES code tokens
    as special tokens), (2) a Llama with a chat template; random weights, tokenizers trained
    here."""
    import torch
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        M2M100Config,
        M2M100ForConditionalGeneration,
        NllbTokenizer,
    )

    from ray_align.model import train_tokenizer

    root = tmp_path_factory.mktemp("hf_models")
    bpe = Tokenizer(BPE(unk_token="<unk>"))
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=150, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False))
    spec = json.loads(bpe.to_str())["model"]
    tok = NllbTokenizer(vocab=spec["vocab"], merges=[tuple(m) for m in spec["merges"]])
    torch.manual_seed(0)
    seq2seq = M2M100ForConditionalGeneration(M2M100Config(
        vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id))
    seq2seq.save_pretrained(root / "nllb")
    tok.save_pretrained(root / "nllb")

    tok = train_tokenizer(CORPUS, 300)
    tok.chat_template = CHAT
    torch.manual_seed(0)
    causal = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id))
    causal.save_pretrained(root / "llama")
    tok.save_pretrained(root / "llama")
    return SimpleNamespace(nllb=str(root / "nllb"), llama=str(root / "llama"))


def spy(loaded: Loaded) -> list[tuple[dict[str, Any], Any]]:
    """Record each `generate` call's kwargs and output sequences."""
    calls, generate = [], loaded.model.generate

    def recorded(**kwargs: Any) -> Any:
        out = generate(**kwargs)
        calls.append((kwargs, out))
        return out

    loaded.model.generate = recorded
    return calls


def test_seq2seq_forces_the_target_code_and_skips_overlong_inputs(models):
    tr = HFTranslator(HFOptions(model=models.nllb, max_new_tokens=5, batch_size=2))
    m = tr.load("en", "de")
    assert (m.kind, m.codes, m.context) == ("seq2seq", "nllb", 64)  # all auto-detected
    calls = spy(m)
    texts = ["The capital of France is Paris.", LONG, "Berlin", "What is the capital?"]
    out = tr.translate(texts, "en", "de")
    assert len(out) == 4 and out[1] == Untranslated("too long")
    assert all(isinstance(t, str) and t.strip() == t != "" for t in out[:1] + out[2:])
    assert len(calls) == 2  # 3 inputs that fit, sub-batches of 2; the long one never sent
    de, en = (m.tokenizer.convert_tokens_to_ids(c) for c in ("deu_Latn", "eng_Latn"))
    for kwargs, seqs in calls:
        assert kwargs["forced_bos_token_id"] == de
        assert (seqs[:, 0] == m.model.config.decoder_start_token_id).all()
        assert (seqs[:, 1] == de).all()
        assert (kwargs["input_ids"][:, 0] == en).all()  # tokenizer.src_lang: NLLB's prefix

    calls.clear()
    assert len(tr.translate(["Berlin"], "en", "ja")) == 1
    assert calls[0][1][0, 1] == m.tokenizer.convert_tokens_to_ids("jpn_Jpan")
    assert tr.translate([], "en", "de") == []


def test_language_codes_options_and_errors(models):
    tr = HFTranslator(HFOptions(model=models.nllb, codes="nllb", max_new_tokens=4,
                                lang_codes={"xx": "fra_Latn", "yy": "zzz_Zzzz"}))
    m = tr.load("en", "xx")
    calls = spy(m)
    assert len(tr.translate(["Berlin"], "en", "xx")) == 1
    assert calls[0][0]["forced_bos_token_id"] == m.tokenizer.convert_tokens_to_ids("fra_Latn")
    with pytest.raises(ValueError, match=r"language 'qq'.*translate\.options\.lang_codes"):
        tr.translate(["Berlin"], "en", "qq")
    with pytest.raises(ValueError, match=r"no language token for 'yy'.*options\.lang_codes"):
        tr.translate(["Berlin"], "en", "yy")
    with pytest.raises(ValueError, match=r"language 'qq'.*translate\.options\.lang_codes"):
        hf_step(None, Job("en", ["de", "qq"]), tr.options)  # explicit nllb: fails in the driver

    class M2MTokenizer:  # M2M100's lookup: plain ISO codes through get_lang_id
        def get_lang_id(self, lang: str) -> int:
            return {"en": 5, "de": 7}[lang]

    m2m = Loaded(None, M2MTokenizer(), "seq2seq", "m2m", None)
    assert tr._lang_id(m2m, "de") == 7
    with pytest.raises(ValueError, match=r"'qq'.*translate\.options\.lang_codes"):
        tr._lang_id(m2m, "qq")
    assert language_name("sw") == "Swahili" and language_name("q!") == "q!"


def test_causal_prompts_pads_left_and_returns_only_new_tokens(models):
    tr = HFTranslator(HFOptions(model=models.llama, max_new_tokens=5, batch_size=8))
    m = tr.load("en", "ja")
    assert (m.kind, m.context) == ("causal", 128)
    calls = spy(m)
    texts = ["The capital of France is Paris, the largest city.", LONG, "Berlin"]
    out = tr.translate(texts, "en", "ja")
    assert len(out) == 3 and out[1] == Untranslated("too long")
    assert all(isinstance(t, str) and t for t in out[::2])
    (kwargs, seqs), = calls
    ids, mask, width = kwargs["input_ids"], kwargs["attention_mask"], kwargs["input_ids"].shape[1]
    assert ids[0, 0] == m.tokenizer.pad_token_id and mask[0, 0] == 0 and mask[:, -1].all()
    prompt = m.tokenizer.decode(ids[0], skip_special_tokens=True)
    assert "from English to Japanese" in prompt and prompt.rstrip().endswith("Berlin\nassistant:")
    assert out[2] == m.tokenizer.decode(seqs[1, width:], skip_special_tokens=True).strip()

    calls.clear()
    m.tokenizer.chat_template = None  # no template: the raw prompt
    tr.translate(["Berlin"], "en", "hi")
    raw = m.tokenizer.decode(calls[0][0]["input_ids"][0], skip_special_tokens=True)
    assert raw.startswith("Translate the following text from English to Hindi")
    assert "user:" not in raw


def test_through_ray_data_every_column_is_carried(ray_local, models):
    rows = [{"id": f"q{i}", "prompt": f"What is the capital of country {i}?",
             "chosen": "Paris", "rejected": None if i == 1 else "Berlin", "context": f"ctx {i}",
             "file": "source.jsonl", "row": i} for i in range(3)]
    backend = get_backend("hf")
    options = backend.options.model_validate(
        {"model": models.nllb, "max_new_tokens": 4, "batch_size": 2})
    out = backend.step(ray_local.data.from_items(rows), Job("en", ["de", "ja"]), options
                       ).take_all()
    assert len(out) == 6
    assert sorted((r["id"], r["lang"]) for r in out) == sorted(
        (f"q{i}", lang) for i in range(3) for lang in ("de", "ja"))
    for r in out:
        src = rows[int(r["id"][1:])]
        assert set(r) == set(src) | {"lang", "translator", "error"}
        assert r["translator"] == "hf"
        assert all(r[k] == src[k] for k in ("context", "file", "row"))
        assert (r["rejected"] is None) == (src["rejected"] is None)
        assert r["error"] is None and isinstance(r["prompt"], str) and isinstance(r["chosen"], str)


def test_options_are_validated_at_config_load(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"translate\.options\.kind"):
        load_config(None, ["translate.backend=hf", "translate.options={model: /x, kind: nope}"])
    with pytest.raises(ConfigError, match=r"translate\.options\.model: Field required"):
        load_config(None, ["translate.backend=hf"])
    with pytest.raises(ConfigError, match=r"translate\.options\.prompt: .*\{text\}"):
        load_config(None, ["translate.backend=hf", "translate.options={model: /x, prompt: hi}"])
    cfg = load_config(None, ["translate.backend=hf", "translate.options={model: '/x/{src}-{tgt}',"
                                                     " num_gpus: 0.5, lang_codes: {pt: por_Latn}}"])
    options = cfg.translate.backend_options()
    assert isinstance(options, HFOptions) and options.num_gpus == 0.5
    assert (options.kind, options.codes, options.max_new_tokens) == ("auto", "auto", 256)


# The stage with `hf` end to end (through the CLI, killed and rerun): test_translate_resume.py
