"""The `hf` translation backend: Hugging Face transformers models in a Ray Data actor pool.

Seq2seq models (NLLB, M2M100, Marian, ...) and causal (instruct) LMs, batched greedy or beam
generation. Options (`translate.options`, besides `batch_size` and `concurrency`):

- `model`: a local path or hub id; `{src}`/`{tgt}` are replaced per language pair (per-pair
  models, e.g. `Helsinki-NLP/opus-mt-{src}-{tgt}`); each actor loads a model once per name.
- `kind`: `auto` (the config's `is_encoder_decoder`), `seq2seq` or `causal`.
- `codes` (seq2seq): how the languages are given to the model. `nllb`: `tokenizer.src_lang`
  and a forced first token, FLORES codes (`deu_Latn`); `m2m`: the same with plain ISO codes
  (M2M100); `none`: not at all (Marian); `auto`: from the tokenizer / model type.
- `lang_codes`: overrides of the code map, e.g. `{pt: por_Latn}` (with `codes: nllb` any
  tokenizer's language tokens work, e.g. mBART-50's `de_DE`); for causal models, the
  language's name in the prompt (default: its English name from babel).
- `max_new_tokens` (256), `num_beams` (1), `dtype` (`float32|bfloat16|float16`), `device`
  (`auto|cpu|cuda`), `num_gpus` per actor (0), and `prompt` (causal models: a `str.format`
  template of `{text}`, `{src_name}`, `{tgt_name}`, `{src}`, `{tgt}`, wrapped in the
  tokenizer's chat template when it has one).

A text whose tokenized input does not fit the model's context (for causal models: with
`max_new_tokens` of room for the answer) is not sent to the model and comes back null, as does
an empty output; both become rejects downstream, e.g. `untranslatable: prompt (too long)` or
`untranslatable: chosen (empty output)`.

    translate:                    # NLLB on 2 GPU actors
      backend: hf
      options: {model: facebook/nllb-200-distilled-600M, batch_size: 64, concurrency: 2,
                num_gpus: 1, dtype: bfloat16, num_beams: 4}

    translate:                    # an instruct LM, chat template and default prompt
      backend: hf
      options: {model: Qwen/Qwen2.5-1.5B-Instruct, batch_size: 32, num_gpus: 1,
                dtype: bfloat16, max_new_tokens: 200}
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from ray_align.data.translators import Backend, Job, Options
from ray_align.data.translators.prompts import DEFAULT_PROMPT, check_template, prompt_ids
from ray_align.data.translators.texts import Untranslated, texts_step

if TYPE_CHECKING:
    import ray.data

OPTION = "translate.options.lang_codes"

# ISO 639-1 (and a few script variants) -> NLLB-200's FLORES-200 codes.
NLLB_CODES = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "as": "asm_Beng", "az": "azj_Latn",
    "be": "bel_Cyrl", "bg": "bul_Cyrl", "bn": "ben_Beng", "bo": "bod_Tibt", "bs": "bos_Latn",
    "ca": "cat_Latn", "cs": "ces_Latn", "cy": "cym_Latn", "da": "dan_Latn", "de": "deu_Latn",
    "el": "ell_Grek", "en": "eng_Latn", "eo": "epo_Latn", "es": "spa_Latn", "et": "est_Latn",
    "eu": "eus_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn", "ga": "gle_Latn",
    "gl": "glg_Latn", "gu": "guj_Gujr", "ha": "hau_Latn", "he": "heb_Hebr", "hi": "hin_Deva",
    "hr": "hrv_Latn", "hu": "hun_Latn", "hy": "hye_Armn", "id": "ind_Latn", "ig": "ibo_Latn",
    "is": "isl_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "jv": "jav_Latn", "ka": "kat_Geor",
    "kk": "kaz_Cyrl", "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang", "ky": "kir_Cyrl",
    "lo": "lao_Laoo", "lt": "lit_Latn", "lv": "lvs_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym",
    "mn": "khk_Cyrl", "mr": "mar_Deva", "ms": "zsm_Latn", "mt": "mlt_Latn", "my": "mya_Mymr",
    "nb": "nob_Latn", "ne": "npi_Deva", "nl": "nld_Latn", "nn": "nno_Latn", "no": "nob_Latn",
    "pa": "pan_Guru", "pl": "pol_Latn", "ps": "pbt_Arab", "pt": "por_Latn", "ro": "ron_Latn",
    "ru": "rus_Cyrl", "si": "sin_Sinh", "sk": "slk_Latn", "sl": "slv_Latn", "so": "som_Latn",
    "sq": "als_Latn", "sr": "srp_Cyrl", "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml",
    "te": "tel_Telu", "tg": "tgk_Cyrl", "th": "tha_Thai", "tl": "tgl_Latn", "tr": "tur_Latn",
    "uk": "ukr_Cyrl", "ur": "urd_Arab", "uz": "uzn_Latn", "vi": "vie_Latn", "xh": "xho_Latn",
    "yo": "yor_Latn", "zh": "zho_Hans", "zh-Hans": "zho_Hans", "zh-Hant": "zho_Hant",
    "zu": "zul_Latn",
}


class HFOptions(Options):
    """Options of the `hf` backend (see the module docstring)."""

    model: str
    kind: Literal["auto", "seq2seq", "causal"] = "auto"
    codes: Literal["auto", "nllb", "m2m", "none"] = "auto"
    lang_codes: dict[str, str] = {}
    max_new_tokens: int = Field(256, gt=0)
    num_beams: int = Field(1, gt=0)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_gpus: float = Field(0, ge=0)
    prompt: str = DEFAULT_PROMPT

    @field_validator("prompt")
    @classmethod
    def _prompt_fields(cls, prompt: str) -> str:
        return check_template(prompt)


def model_name(template: str, src: str, tgt: str) -> str:
    return template.replace("{src}", src).replace("{tgt}", tgt)


def nllb_code(lang: str, overrides: dict[str, str]) -> str:
    """`lang`'s code token for `codes: nllb` (ValueError naming the option if unknown)."""
    code = overrides.get(lang) or NLLB_CODES.get(lang)
    if code is None and len(lang) == 8 and lang[3] == "_":  # already a FLORES code
        code = lang
    if code is None:
        raise ValueError(f"no NLLB (FLORES-200) code for language {lang!r}: add one to "
                         f"{OPTION}, e.g. {{{lang}: xxx_Latn}}")
    return code


@dataclass
class Loaded:
    """One loaded model: `kind` seq2seq|causal, `codes` nllb|m2m|none, `context` in tokens
    (None: unknown)."""

    model: Any
    tokenizer: Any
    kind: str
    codes: str
    context: int | None


def _known_length(n: Any) -> int | None:
    return n if isinstance(n, int) and 0 < n < 10**9 else None  # tokenizers say 1e30 if unknown


def detect_codes(tokenizer: Any, config: Any) -> str:
    cls = type(tokenizer).__name__
    flores = tokenizer.convert_tokens_to_ids("eng_Latn")
    if cls.startswith("Nllb") or (flores is not None and flores != tokenizer.unk_token_id):
        return "nllb"
    if cls.startswith("M2M100") or getattr(config, "model_type", None) == "m2m_100":
        return "m2m"
    return "none"


class HFTranslator:
    """A `TextTranslator` over transformers models, loaded lazily, one per model name."""

    name = "hf"

    def __init__(self, options: HFOptions) -> None:
        self.options = options
        self._loaded: dict[str, Loaded] = {}

    def load(self, src: str, tgt: str) -> Loaded:
        """The model for translating `src` -> `tgt` (cached)."""
        name = model_name(self.options.model, src, tgt)
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def _load(self, name: str) -> Loaded:
        import torch
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForSeq2SeqLM,
            AutoTokenizer,
        )

        o = self.options
        config = AutoConfig.from_pretrained(name)
        kind = o.kind if o.kind != "auto" else (
            "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal")
        auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
        device = o.device if o.device != "auto" else (
            "cuda" if torch.cuda.is_available() else "cpu")
        model = auto.from_pretrained(name, dtype=getattr(torch, o.dtype)).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(name)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        codes = "none" if kind == "causal" else (
            o.codes if o.codes != "auto" else detect_codes(tokenizer, config))
        positions = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        known = [n for n in (_known_length(positions), _known_length(
            tokenizer.model_max_length)) if n is not None]
        return Loaded(model, tokenizer, kind, codes, min(known, default=None))

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str | Untranslated]:
        """One translation per text; `Untranslated` where the input is too long or the output
        empty."""
        if not texts:
            return []
        m = self.load(src, tgt)
        if m.kind == "seq2seq":
            return self._seq2seq(m, texts, src, tgt)
        return self._causal(m, texts, src, tgt)

    def _seq2seq(self, m: Loaded, texts: list[str], src: str, tgt: str) -> list[str | Untranslated]:
        tok, extra = m.tokenizer, {}
        if m.codes != "none":
            extra["forced_bos_token_id"] = self._lang_id(m, tgt)
            self._lang_id(m, src)  # the same clear error for an unknown source language
            tok.src_lang = self._code(m, src)
        ids = tok(texts)["input_ids"]
        return self._generate(m, ids, m.context, left=False, **extra)

    def _causal(self, m: Loaded, texts: list[str], src: str, tgt: str) -> list[str | Untranslated]:
        tok, o = m.tokenizer, self.options
        room = None if m.context is None else m.context - o.max_new_tokens  # for the answer
        if room is not None and room <= 0:
            raise ValueError(f"max_new_tokens={o.max_new_tokens} leaves no room for a prompt in "
                             f"the model's context of {m.context} tokens")
        ids = prompt_ids(tok, o.prompt, texts, src, tgt, o.lang_codes)
        return self._generate(m, ids, room, left=True)

    def _code(self, m: Loaded, lang: str) -> str:
        if m.codes == "nllb":
            return nllb_code(lang, self.options.lang_codes)
        return self.options.lang_codes.get(lang, lang)

    def _lang_id(self, m: Loaded, lang: str) -> int:
        """The id of `lang`'s code token (forced first in the output for the target)."""
        tok, code, tid = m.tokenizer, self._code(m, lang), None
        if m.codes == "m2m" and hasattr(tok, "get_lang_id"):
            with contextlib.suppress(KeyError):
                tid = tok.get_lang_id(code)
        else:  # a code token (NLLB's `deu_Latn`), or M2M100's `__de__`
            tid = next((t for t in (tok.convert_tokens_to_ids(c) for c in (code, f"__{code}__"))
                        if t is not None and t != tok.unk_token_id), None)
        if tid is None:
            raise ValueError(f"the tokenizer of {self.options.model!r} has no language token for "
                             f"{lang!r} (code {code!r}): set its code in {OPTION}")
        return tid

    def _generate(self, m: Loaded, ids: list[list[int]], limit: int | None, left: bool,
                  **extra: Any) -> list[str | Untranslated]:
        """Generate for every input of at most `limit` tokens, in length-sorted sub-batches of
        `batch_size`; causal models (`left` padding) return only the new tokens."""
        import torch

        o, tok = self.options, m.tokenizer
        out: list[str | Untranslated] = [Untranslated("too long")] * len(ids)
        todo = sorted((i for i, x in enumerate(ids) if limit is None or len(x) <= limit),
                      key=lambda i: len(ids[i]))
        device = m.model.device
        for start in range(0, len(todo), o.batch_size):
            chunk = todo[start:start + o.batch_size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                span = slice(width - len(ids[i]), width) if left else slice(0, len(ids[i]))
                input_ids[row, span], mask[row, span] = torch.tensor(ids[i]), 1
            with torch.inference_mode():
                seqs = m.model.generate(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device),
                    max_new_tokens=o.max_new_tokens, num_beams=o.num_beams, do_sample=False,
                    pad_token_id=tok.pad_token_id, **extra)
            if left:
                seqs = seqs[:, width:]
            for i, text in zip(chunk, tok.batch_decode(seqs, skip_special_tokens=True),
                               strict=True):
                out[i] = text.strip() or Untranslated("empty output")
        return out


def translate(sources: ray.data.Dataset, job: Job, options: HFOptions) -> ray.data.Dataset:
    """Translate `sources` with an actor pool of `HFTranslator`s."""
    if options.codes == "nllb":  # fail in the driver, before any model is loaded
        for lang in (job.src, *job.targets):
            nllb_code(lang, options.lang_codes)
    actor = {"num_gpus": options.num_gpus} if options.num_gpus > 0 else {}
    return texts_step(functools.partial(HFTranslator, options), sources, job, options, **actor)


BACKEND = Backend(options=HFOptions, step=translate)
