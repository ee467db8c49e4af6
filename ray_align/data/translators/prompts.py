"""What the LLM backends (`hf` causal models, `vllm`, `openai`) share: the default translation
prompt, the check of a prompt template's fields (`{text}`, `{src_name}`, `{tgt_name}`, `{src}`,
`{tgt}`), the languages' names in it, and the prompt through a tokenizer's chat template."""

from __future__ import annotations

import functools
import string
from typing import Any

DEFAULT_PROMPT = ("Translate the following text from {src_name} to {tgt_name}. "
                  "Reply with the translation only.\n\n{text}")
PROMPT_FIELDS = {"text", "src_name", "tgt_name", "src", "tgt"}


def template_fields(template: str) -> set[str]:
    """The `str.format` fields of `template` (ValueError if it is not a valid template)."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def check_template(template: str, need_text: bool = True) -> str:
    """`template` if its fields are among PROMPT_FIELDS (and include `{text}` if `need_text`),
    else ValueError naming them (for an options validator)."""
    fields = template_fields(template)
    if (need_text and "text" not in fields) or not fields <= PROMPT_FIELDS:
        need = "must contain {text} and only" if need_text else "may contain only"
        raise ValueError(f"{need} fields of {sorted(PROMPT_FIELDS)}, got {sorted(fields)}")
    return template


@functools.cache
def language_name(code: str) -> str:
    """English name of a language code (`sw` -> `Swahili`), else the code itself."""
    from babel import Locale

    try:
        return Locale.parse(code.replace("-", "_")).get_display_name("en") or code
    except (ValueError, TypeError):  # babel's UnknownLocaleError is a ValueError
        return code


def prompt_names(src: str, tgt: str, overrides: dict[str, str]) -> dict[str, str]:
    """The template's language fields for `src` -> `tgt` (`overrides`: code -> name)."""
    return {"src": src, "tgt": tgt, "src_name": overrides.get(src) or language_name(src),
            "tgt_name": overrides.get(tgt) or language_name(tgt)}


def prompt_texts(tokenizer: Any, template: str, texts: list[str], src: str, tgt: str,
                 names: dict[str, str]) -> tuple[list[str], bool]:
    """The prompts translating `texts` from `src` to `tgt` (`names`: overrides of the languages'
    names), through the tokenizer's chat template if it has one (then True)."""
    fill = prompt_names(src, tgt, names)
    prompts = [template.format(text=t, **fill) for t in texts]
    chat = bool(getattr(tokenizer, "chat_template", None))
    if chat:
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}],
                                                 tokenize=False, add_generation_prompt=True)
                   for p in prompts]
    return prompts, chat


def prompt_ids(tokenizer: Any, template: str, texts: list[str], src: str, tgt: str,
               names: dict[str, str]) -> list[list[int]]:
    """The token ids of `prompt_texts` (a chat template brings its own special tokens)."""
    prompts, chat = prompt_texts(tokenizer, template, texts, src, tgt, names)
    return tokenizer(prompts, add_special_tokens=not chat)["input_ids"]
