"""Continuation log-likelihoods (`eval/loglik.py`) on a tiny random Llama: equal to one
unpadded forward pass per pair, and the scorer's choice and loglik rules."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from ray_align.config import ModelConfig
from ray_align.eval.benchmarks.base import ROW
from ray_align.eval.benchmarks.mmmlu import CHOICES as MMLU_CHOICES
from ray_align.eval.loglik import LoglikScorer, continuation_logprobs, encode_pair
from ray_align.model import build_model, save, train_tokenizer

TEXTS = ["What is the currency of Japan? Japanese Yen", "日本の通貨は何ですか？ 日本円",
         "The cat sat on the mat.", "Answer: A B C D"] * 20


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, tokenizer, saved path): a random-weight Llama and a locally trained tokenizer."""
    tok = train_tokenizer(TEXTS, vocab_size=300)
    cfg = ModelConfig(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2,
                      intermediate_size=64, max_len=64)
    model = build_model(cfg, tok, seed=0).eval()
    return model, tok, save(model, tok, tmp_path_factory.mktemp("tiny") / "m")


@torch.inference_mode()
def direct(model, tok, context: str, continuation: str) -> tuple[float, bool]:
    """One unpadded forward pass: sum of the continuation's log-probs, and is it greedy."""
    if context:
        ctx = tok(context)["input_ids"]
        whole = tok(context + continuation)["input_ids"]
    else:
        ctx = [tok.bos_token_id]
        whole = ctx + tok(continuation, add_special_tokens=False)["input_ids"]
    logp = model(torch.tensor([whole])).logits[0, len(ctx) - 1: -1].log_softmax(-1)
    cont = torch.tensor(whole[len(ctx):])
    return logp.gather(-1, cont[:, None]).sum().item(), bool((logp.argmax(-1) == cont).all())


def greedy_word(model, tok, context: str) -> str:
    """A continuation that is the model's greedy token after `context` (and encodes alone)."""
    ids = tok(context)["input_ids"]
    with torch.inference_mode():
        best = model(torch.tensor([ids])).logits[0, -1].argsort(descending=True)
    for t in best.tolist():
        if t in tok.all_special_ids:
            continue
        word = tok.decode([t])
        if tok(context + word)["input_ids"] == ids + [t]:
            return word
    raise AssertionError("no greedy token re-encodes alone")


def test_continuation_logprobs_match_unpadded_passes(tiny):
    model, tok, _ = tiny
    greedy = greedy_word(model, tok, "The cat sat on the")
    pairs = [("What is the currency of Japan?", " Japanese Yen"),
             ("日本の通貨は何ですか？", " 日本円"),
             ("A", " B"),
             ("", "The cat sat on the mat."),
             ("The cat sat on the", greedy),
             ("Answer:", " C"),
             ("Answer:", "A"), ("Answer:", "B")]  # one token each: one shared forward pass
    assert [len(encode_pair(tok, c, x)[1]) for c, x in pairs[-2:]] == [1, 1]
    got = continuation_logprobs(model, tok, pairs, max_len=64, batch_size=4)
    want = [direct(model, tok, c, x) for c, x in pairs]
    for g, (w, w_greedy), (c, x) in zip(got, want, pairs, strict=True):
        assert g.logprob == pytest.approx(w, abs=1e-5)
        assert g.greedy == w_greedy
        assert g.tokens == len(encode_pair(tok, c, x)[1])
    assert got[4].greedy is True and got[0].greedy is False
    # alone (no padding) the same numbers as in a padded batch
    assert continuation_logprobs(model, tok, pairs[2:3], 64)[0][0] == pytest.approx(
        got[2][0], abs=1e-5)
    # a context's trailing space moves to the continuation, as lm-eval does
    assert continuation_logprobs(model, tok, [("Answer: ", "C")], 64)[0][0] == pytest.approx(
        got[5][0], abs=1e-5)


class FullLogits(torch.nn.Module):
    """The same causal LM behind a forward without `logits_to_keep`: every position's logits."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


def test_only_continuation_positions_reach_the_lm_head(tiny):
    """The LM head runs on the positions that predict a continuation (`logits_to_keep`), with
    the same scores as a model whose forward returns every position's logits."""
    model, tok, _ = tiny
    pairs = [("What is the currency of Japan? " * 3, " Japanese Yen"), ("Answer:", " C"),
             ("Answer:", " D")]
    widths: list[int] = []
    hook = model.lm_head.register_forward_hook(lambda m, i, o: widths.append(i[0].shape[1]))
    try:
        kept = continuation_logprobs(model, tok, pairs, max_len=64)
        full = continuation_logprobs(FullLogits(model), tok, pairs, max_len=64)
    finally:
        hook.remove()
    encoded = [encode_pair(tok, c, x) for c, x in pairs]
    long_ctx, long_cont = encoded[0]
    # the long row's continuation, then the short rows': " C" and " D" are two tokens each
    # (" " + letter), so both rows are one input whose last 2 positions are scored
    assert encoded[1][0] == encoded[2][0] and len(encoded[1][1]) == len(encoded[2][1]) == 2
    positions = len(long_cont) + 2
    assert widths == [positions, len(long_ctx) + len(long_cont) - 1]
    assert positions < widths[1]
    for k, f in zip(kept, full, strict=True):
        assert k.logprob == pytest.approx(f.logprob, abs=1e-5)
        assert (k.greedy, k.tokens) == (f.greedy, f.tokens)


def test_continuation_logprobs_left_truncates_the_context(tiny):
    model, tok, _ = tiny
    context, cont = "What is the currency of Japan? " * 4 + "The cat sat on the", " mat."
    ctx, whole = tok(context)["input_ids"], tok(context + cont)["input_ids"]
    n = len(whole) - len(ctx)
    window = whole[-9:]  # max_len 8: the last 9 tokens, the last one not an input
    with torch.inference_mode():
        logp = model(torch.tensor([window[:-1]])).logits[0, -n:].log_softmax(-1)
    want = logp.gather(-1, torch.tensor(window[-n:])[:, None]).sum().item()
    got = continuation_logprobs(model, tok, [(context, cont)], max_len=8)[0]
    assert got.logprob == pytest.approx(want, abs=1e-5) and got.tokens == n


def test_loglik_scorer(tiny):
    model, tok, path = tiny
    rows = [
        {"id": "0", "lang": "en", "prompt": "What is the currency of Japan?\nAnswer:",
         "target": " B", "choices": MMLU_CHOICES, "source": "f:0"},
        {"id": "1", "lang": "en", "prompt": "", "target": "The cat sat on the mat.",
         "choices": ["The cat sat on the mat.", "The mat sat on the cat."], "source": "f:1"},
    ]
    out = LoglikScorer(str(path), max_len=64, kind="choice")(pa.Table.from_pylist(rows, ROW))
    assert out.column_names == [*ROW.names, "prediction", "logliks", "correct"]
    for r in out.to_pylist():
        want = [direct(model, tok, r["prompt"], c)[0] for c in r["choices"]]
        assert r["logliks"] == pytest.approx(want, abs=1e-5)
        best = r["choices"][want.index(max(want))]
        assert (r["prediction"], r["correct"]) == (best, best == r["target"])
    greedy = greedy_word(model, tok, "The cat sat on the")
    lam = [{"id": "0", "lang": "en", "prompt": "The cat sat on the", "target": greedy,
            "choices": [greedy], "source": "f:0"},
           {"id": "1", "lang": "en", "prompt": "What is the currency of", "target": " Japan?",
            "choices": [" Japan?"], "source": "f:1"}]
    out = LoglikScorer(str(path), max_len=64, kind="loglik")(pa.Table.from_pylist(lam, ROW))
    got = out.select(["prediction", "correct"]).to_pylist()
    assert got[0] == {"prediction": greedy, "correct": True}
    is_greedy = direct(model, tok, lam[1]["prompt"], " Japan?")[1]
    assert got[1] == {"prediction": " Japan?" if is_greedy else "", "correct": is_greedy}
    assert out["logliks"].to_pylist()[0] == pytest.approx(
        [direct(model, tok, "The cat sat on the", greedy)[0]], abs=1e-5)
    with pytest.raises(ValueError, match="not 'generate'"):
        LoglikScorer(str(path), max_len=64, kind="generate")




def test_target_nll_is_the_gold_answers_mean_nll_per_token(tiny):
    from ray_align.eval.generation import Generator, load_for_generation, target_nll

    _, tok, path = tiny
    model, left = load_for_generation(str(path))  # the generator's tokenizer: pads on the left
    prompts, targets = ["Q: What is the currency of Japan?\nA:", "日本の通貨は何ですか？"], [
        "Japanese Yen", "日本円"]
    got = target_nll(model, left, prompts, targets, 64)
    for value, prompt, target in zip(got, prompts, targets, strict=True):
        total, _ = direct(model, tok, prompt, f" {target}")
        n = len(tok(prompt + f" {target}")["input_ids"]) - len(tok(prompt)["input_ids"])
        assert n >= 2 and value == pytest.approx(-total / n, rel=1e-5)
    batch = pa.table({"prompt": prompts, "target": targets})
    scored = Generator(str(path), 4, 64, nll=True)(batch)
    assert scored["nll"].to_pylist() == pytest.approx(got, rel=1e-5)
    assert "nll" not in Generator(str(path), 4, 64)(batch).column_names
