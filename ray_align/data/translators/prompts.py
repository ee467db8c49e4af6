"""What the LLM backends (`hf` causal models, `openai`) share: the default translation prompt,
the check of a prompt template's fields and the languages' names in it."""

from __future__ import annotations

import functools
import string

DEFAULT_PROMPT = ("Translate the following text from {src_name} to {tgt_name}. "
                  "Reply with the translation only.\n\n{text}")
PROMPT_FIELDS = {"text", "src_name", "tgt_name", "src", "tgt"}


def template_fields(template: str) -> set[str]:
    """The `str.format` fields of `template` (ValueError if it is not a valid template)."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def check_template(template: str, need_text: bool = True) -> str:
    """`template` if its fields are among PROMPT_FIELDS (and include `{text}` if `need_text`),
    else ValueError naming them."""
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
