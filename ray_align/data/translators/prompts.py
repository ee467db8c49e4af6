"""The translation prompt of instruct (causal) LMs, shared by the `hf` and `vllm` backends: a
`str.format` template of `{text}`, `{src_name}`, `{tgt_name}`, `{src}`, `{tgt}`, wrapped in the
tokenizer's chat template when it has one."""

from __future__ import annotations

import functools
import string
from typing import Any

DEFAULT_PROMPT = ("Translate the following text from {src_name} to {tgt_name}. "
                  "Reply with the translation only.\n\n{text}")
PROMPT_FIELDS = {"text", "src_name", "tgt_name", "src", "tgt"}


def check_prompt(prompt: str) -> str:
    """`prompt` if it holds `{text}` and only `PROMPT_FIELDS` (for an options validator)."""
    fields = {f for _, f, _, _ in string.Formatter().parse(prompt) if f is not None}
    if "text" not in fields or not fields <= PROMPT_FIELDS:
        raise ValueError(f"must contain {{text}} and only fields of {sorted(PROMPT_FIELDS)}"
                         f", got {sorted(fields)}")
    return prompt


@functools.cache
def language_name(code: str) -> str:
    """English name of a language code (`sw` -> `Swahili`), else the code itself."""
    from babel import Locale

    try:
        return Locale.parse(code.replace("-", "_")).get_display_name("en") or code
    except (ValueError, TypeError):  # babel's UnknownLocaleError is a ValueError
        return code


def prompt_texts(tokenizer: Any, template: str, texts: list[str], src: str, tgt: str,
                 names: dict[str, str]) -> tuple[list[str], bool]:
    """The prompts translating `texts` from `src` to `tgt` (`names`: overrides of the languages'
    names), through the tokenizer's chat template if it has one (then True)."""
    fill = {"src": src, "tgt": tgt, "src_name": names.get(src) or language_name(src),
            "tgt_name": names.get(tgt) or language_name(tgt)}
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
