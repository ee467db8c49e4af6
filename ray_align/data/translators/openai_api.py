"""The `openai` translation backend: any OpenAI-compatible chat completions endpoint (OpenAI,
`vllm serve`, SGLang, TGI, LiteLLM, ...) over HTTP (aiohttp), from a Ray Data actor pool.

Each actor holds one HTTP session and keeps up to `max_in_flight` requests in flight; one
request per text (the texts of a row are translated independently). Options
(`translate.options`, besides `batch_size` and `concurrency`, the number of actors):

- `base_url` (e.g. `http://host:8000/v1`; `/chat/completions` is appended) and `model`.
- `api_key_env`: the name of the environment variable holding the key (`OPENAI_API_KEY`),
  read in the driver (handed to the actors as a secret that prints as `**********`) or, where
  the driver lacks it, in each actor; unset, empty or null: no `Authorization` header (a local
  server). The key is never logged nor put in a row or an error: a server message that echoes
  it is scrubbed.
- `messages`: the chat, each `{role, content}`; contents are `str.format` templates of
  `{text}` (in at least one), `{src_name}`, `{tgt_name}`, `{src}`, `{tgt}`; default: one user
  message with the `hf` backend's prompt. `lang_names`: `{code: name}` overrides of the
  languages' English names.
- `max_tokens` (256), `temperature` (0), `extra_body` (merged into each request, e.g.
  `{seed: 0}`), `keep_truncated` (false: an answer cut at `max_tokens` is untranslatable).
- `max_in_flight` (8) requests per actor, `timeout_s` (60) per request, `max_retries` (5),
  `backoff_base_s` (1), `backoff_max_s` (30).

429s, 5xx, connection errors and timeouts are retried, after the server's `Retry-After` when
it sends one (up to 10 minutes), else after an exponential backoff with jitter (half to all of
`min(backoff_max_s, backoff_base_s * 2**attempt)`). Other 4xx are not retried. A text that
fails (after the retries, a 4xx such as a prompt over the model's context, an empty or cut
answer) comes back null and its row's `error` says why, e.g. `untranslatable: prompt (HTTP 400:
This model's maximum context length is ...)`; the job goes on. A 401, 403 or 404 (a wrong key,
model or URL) stops the job. `translator` is `openai:<model>`.

    translate:                    # a vLLM server (`vllm serve Qwen/Qwen2.5-7B-Instruct`)
      backend: openai
      options: {base_url: "http://10.0.0.5:8000/v1", model: Qwen/Qwen2.5-7B-Instruct,
                api_key_env: null, concurrency: 4, max_in_flight: 32, max_tokens: 512}

    translate:                    # OpenAI, key in $OPENAI_API_KEY, a system prompt
      backend: openai
      options:
        base_url: https://api.openai.com/v1
        model: gpt-4o-mini
        max_in_flight: 16
        messages:
          - {role: system, content: "You translate from {src_name} to {tgt_name}."}
          - {role: user, content: "{text}"}
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ray_align.data.translators import Backend, Job, Options
from ray_align.data.translators.prompts import (
    DEFAULT_PROMPT,
    check_template,
    prompt_names,
    template_fields,
)
from ray_align.data.translators.texts import Untranslated, texts_step

if TYPE_CHECKING:
    import aiohttp
    import ray.data

log = logging.getLogger(__name__)
T = TypeVar("T")

FATAL = {401, 403, 404}  # a wrong key, model or URL: every request would fail the same way
RETRY_AFTER_CAP_S = 600.0
REASON_CHARS = 200


class Message(BaseModel):
    """One chat message of the prompt: `content` is a template (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content")
    @classmethod
    def _fields(cls, content: str) -> str:
        return check_template(content, need_text=False)


class OpenAIOptions(Options):
    """Options of the `openai` backend (see the module docstring)."""

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    messages: list[Message] = [Message(role="user", content=DEFAULT_PROMPT)]
    lang_names: dict[str, str] = {}
    max_tokens: int = Field(256, gt=0)
    temperature: float = Field(0.0, ge=0)
    extra_body: dict[str, Any] = {}
    keep_truncated: bool = False
    max_in_flight: int = Field(8, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not re.match(r"https?://[^/\s]+", url):
            raise ValueError(f"must be an http(s) URL such as http://host:8000/v1, got {url!r}")
        return url.rstrip("/")

    @field_validator("messages")
    @classmethod
    def _text(cls, messages: list[Message]) -> list[Message]:
        if not any("text" in template_fields(m.content) for m in messages):
            raise ValueError("one message's content must contain {text}")
        return messages


def scrub(text: str, key: str | None) -> str:
    """`text` without the key, bearer tokens or `sk-...` keys in it."""
    if key:
        text = text.replace(key, "***")
    text = re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)
    return re.sub(r"\bsk-[A-Za-z0-9_\-]{6,}", "sk-***", text)


def server_message(body: str) -> str:
    """The message of an error response (OpenAI's `{"error": {"message": ...}}`, else the body),
    on one line, at most REASON_CHARS characters."""
    try:
        data = json.loads(body)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", error) if isinstance(error, dict) else error
        body = message if isinstance(message, str) else json.dumps(message)
    except (ValueError, AttributeError):
        pass
    body = " ".join(body.split())
    return body if len(body) <= REASON_CHARS else body[:REASON_CHARS - 3] + "..."


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), if any."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class OpenAIError(RuntimeError):
    """A response that no request would get past (a wrong key, model or URL)."""


class OpenAITranslator:
    """A `TextTranslator` over a chat completions endpoint: an aiohttp session on an event loop
    of its own thread, shared by every call (each call blocks until its texts are done)."""

    def __init__(self, options: OpenAIOptions, key: SecretStr | None = None) -> None:
        self.options, self.name = options, f"openai:{options.model}"
        env = options.api_key_env
        self._key = (key.get_secret_value() if key is not None
                     else (os.environ.get(env) if env else None)) or None
        self.url = f"{options.base_url}/chat/completions"
        self.stats: Counter[str] = Counter()  # requests, retries, failed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="openai-http")
        self._thread.start()
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None

    def __repr__(self) -> str:  # never the key
        return f"OpenAITranslator({self.url!r}, model={self.options.model!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str | Untranslated]:
        """One translation per text, or `Untranslated(reason)`."""
        if not texts:
            return []
        before = self.stats.copy()
        out = self._run(self._all(texts, src, tgt))
        done = self.stats - before
        if done["retries"] or done["failed"]:
            log.warning("%s %s->%s: %d texts, %d requests, %d retries, %d untranslatable",
                        self.name, src, tgt, len(texts), done["requests"], done["retries"],
                        done["failed"])
        return out

    def close(self) -> None:
        """Close the HTTP session and stop the loop's thread."""
        if self._session is not None:
            self._run(self._session.close())
            self._session = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _all(self, texts: list[str], src: str, tgt: str) -> list[str | Untranslated]:
        import aiohttp

        if self._session is None:
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=self.options.timeout_s),
                connector=aiohttp.TCPConnector(limit=self.options.max_in_flight))
            self._slots = asyncio.Semaphore(self.options.max_in_flight)
        names = prompt_names(src, tgt, self.options.lang_names)
        return list(await asyncio.gather(*(self._one(self._messages(t, names)) for t in texts)))

    def _messages(self, text: str, names: dict[str, str]) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content.format(text=text, **names)}
                for m in self.options.messages]

    async def _one(self, messages: list[dict[str, str]]) -> str | Untranslated:
        """One text: request, retry, and read the answer."""
        import aiohttp

        o = self.options
        assert self._session is not None and self._slots is not None
        body = {**o.extra_body, "model": o.model, "messages": messages,
                "max_tokens": o.max_tokens, "temperature": o.temperature}
        why = ""
        for attempt in range(o.max_retries + 1):
            after: float | None = None
            try:
                async with self._slots:
                    self.stats["requests"] += 1
                    async with self._session.post(self.url, json=body) as resp:
                        status = resp.status
                        text = await resp.text(errors="replace")
                        after = retry_after(resp.headers.get("Retry-After"))
                if status == 200:
                    return self._answer(text)
                why = f"HTTP {status}: {server_message(text)}"
                if status in FATAL:
                    raise OpenAIError(self._scrub(
                        f"{why} ({self.url}, model {o.model!r}: check translate.options."
                        f"base_url, model and the key in ${o.api_key_env})"))
                if status != 429 and status < 500:
                    return self._failed(why)
            except TimeoutError:  # aiohttp's timeouts are TimeoutErrors
                why = f"timeout after {o.timeout_s:g} s"
            except aiohttp.ClientError as e:
                why = f"connection error: {type(e).__name__}: {server_message(str(e))}"
            if attempt < o.max_retries:
                self.stats["retries"] += 1
                wait = self._backoff(attempt, after)
                log.debug("%s: retry %d in %.2f s: %s", self.name, attempt + 1, wait,
                          self._scrub(why))
                await asyncio.sleep(wait)
        return self._failed(f"{why}; {o.max_retries + 1} tries")

    def _answer(self, body: str) -> str | Untranslated:
        try:
            choice = json.loads(body)["choices"][0]
            content, finish = choice["message"].get("content"), choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return self._failed(f"malformed response: {server_message(body)}")
        if not isinstance(content, str) or not content.strip():
            return self._failed("empty output")
        if finish == "length" and not self.options.keep_truncated:
            return self._failed(f"cut at max_tokens={self.options.max_tokens}")
        return content.strip()

    def _backoff(self, attempt: int, after: float | None) -> float:
        if after is not None:
            return min(after, RETRY_AFTER_CAP_S)
        o = self.options
        cap = min(o.backoff_max_s, o.backoff_base_s * 2 ** attempt)
        return cap / 2 + random.uniform(0, cap / 2)

    def _failed(self, why: str) -> Untranslated:
        self.stats["failed"] += 1
        return Untranslated(self._scrub(why))

    def _scrub(self, text: str) -> str:
        return scrub(text, self._key)


def translate(sources: ray.data.Dataset, job: Job, options: OpenAIOptions) -> ray.data.Dataset:
    """Translate `sources` with an actor pool of `OpenAITranslator`s."""
    env = options.api_key_env
    key = os.environ.get(env) if env else None
    make = functools.partial(OpenAITranslator, options, SecretStr(key) if key else None)
    return texts_step(make, sources, job, options)


BACKEND = Backend(options=OpenAIOptions, step=translate)
