"""Training objectives: hand-computed values, equality with TRL 1.16 (DPO and ORPO) on a tiny
model, the row encoding, and the weighted composite."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from ray_align.config import ModelConfig
from ray_align.model import build_model, train_tokenizer
from ray_align.prompts import answer_text, rag_prompt
from ray_align.train.objectives import Composite, Forward, options_for
from ray_align.train.objectives.base import IGNORE, encode, encode_rows, forward
from ray_align.train.objectives.consistency import Consistency
from ray_align.train.objectives.dpo import DPO
from ray_align.train.objectives.orpo import ORPO

TOL = 1e-6


def logsigmoid(x: float) -> float:
    return -math.log(1 + math.exp(-x))


def lse(*xs: float) -> float:
    return math.log(sum(math.exp(x) for x in xs))


# --------------------------------------------------------------------------------------------
# Hand-built forward passes: every real token is id 1, and the logits before it give it
# probability q (the other two ids share 1 - q), so each label's log-prob is exactly log q.


def hand_forward(rows: list[list[tuple[float, bool]]], n_chosen: int,
                 hidden: torch.Tensor | None = None) -> tuple[Forward, dict]:
    """`rows`: per sequence, (q, is_response) for the tokens after the leading BOS (id 2)."""
    width = 1 + max(map(len, rows))
    logits = torch.zeros(len(rows), width, 3)
    labels = torch.full((len(rows), width), IGNORE)
    ids = torch.zeros(len(rows), width, dtype=torch.long)  # 0 = pad
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    ids[:, 0], mask[:, 0] = 2, 1
    for i, toks in enumerate(rows):
        for t, (q, response) in enumerate(toks, start=1):
            logits[i, t - 1] = torch.tensor([(1 - q) / 2, q, (1 - q) / 2]).log()
            ids[i, t], mask[i, t] = 1, 1
            if response:
                labels[i, t] = 1
    batch = {"input_ids": ids[:n_chosen], "attention_mask": mask[:n_chosen]}
    return Forward(logits, labels, n_chosen, hidden), batch


P, R = False, True  # prompt token, response token


def test_dpo_sigmoid_loss_by_hand():
    out, batch = hand_forward([
        [(0.05, P), (0.5, R), (0.4, R)],  # chosen 0: log 0.2 (the prompt token is not counted)
        [(0.3, P), (0.9, R)],  # chosen 1: log 0.9
        [(0.05, P), (0.1, R)],  # rejected 0: log 0.1
        [(0.3, P), (0.3, R), (0.5, R), (0.6, R)],  # rejected 1: log 0.09
    ], n_chosen=2)
    batch |= {"ref_chosen_logps": torch.tensor([-1.5, -0.5]),
              "ref_rejected_logps": torch.tensor([-2.0, -3.0]), "langs": ["en", "de"]}
    loss, metrics = DPO(options_for("dpo", {"beta": 0.5}))(out, batch)
    # beta * ((pi_c - ref_c) - (pi_r - ref_r))
    x0 = 0.5 * ((math.log(0.2) + 1.5) - (math.log(0.1) + 2.0))  # 0.5 * (log 2 - 0.5)
    x1 = 0.5 * ((math.log(0.9) + 0.5) - (math.log(0.09) + 3.0))  # 0.5 * (log 10 - 2.5)
    assert x0 > 0 > x1
    assert loss.item() == pytest.approx(-(logsigmoid(x0) + logsigmoid(x1)) / 2, abs=TOL)
    assert metrics["dpo/loss/en"] == pytest.approx(-logsigmoid(x0), abs=TOL)
    assert metrics["dpo/loss/de"] == pytest.approx(-logsigmoid(x1), abs=TOL)
    assert metrics["dpo/margin"] == pytest.approx((x0 + x1) / 2, abs=TOL)
    assert metrics["dpo/margin/de"] == pytest.approx(x1, abs=TOL)
    assert metrics["dpo/accuracy"] == 0.5 and metrics["dpo/accuracy/en"] == 1.0
    assert metrics["dpo/chosen_reward"] == pytest.approx(
        0.5 * ((math.log(0.2) + 1.5) + (math.log(0.9) + 0.5)) / 2, abs=TOL)


@pytest.mark.parametrize("nll", ["response", "full"])
def test_orpo_loss_by_hand(nll):
    out, batch = hand_forward([
        [(0.05, P), (0.8, R), (0.2, R)],  # chosen 0: mean log-prob log 0.4
        [(0.3, P), (0.6, P), (0.5, R)],  # chosen 1: mean log-prob log 0.5
        [(0.05, P), (0.1, R)],  # rejected 0: log 0.1
        [(0.3, P), (0.6, P), (0.5, R), (0.5, R), (0.8, R)],  # rejected 1: log(0.2) / 3
    ], n_chosen=2)
    batch["langs"] = ["en", "de"]
    loss, metrics = ORPO(options_for("orpo", {"beta": 0.25, "nll": nll}))(out, batch)
    # log odds = log(p_c / (1 - p_c)) - log(p_r / (1 - p_r)) on the mean per-token log-probs
    r1 = math.exp(math.log(0.2) / 3)
    log_odds = [math.log((0.4 / 0.6) / (0.1 / 0.9)),  # = log 6
                math.log((0.5 / 0.5) / (r1 / (1 - r1)))]
    ratio = [logsigmoid(x) for x in log_odds]
    assert ratio[0] == pytest.approx(math.log(6 / 7), abs=1e-12)
    if nll == "response":  # chosen response tokens only
        expected_nll = -(math.log(0.8) + math.log(0.2) + math.log(0.5)) / 3
    else:  # every chosen token after BOS, prompt included
        expected_nll = -(math.log(0.05) + math.log(0.8) + math.log(0.2)
                         + math.log(0.3) + math.log(0.6) + math.log(0.5)) / 6
    assert metrics["orpo/nll"] == pytest.approx(expected_nll, abs=TOL)
    assert loss.item() == pytest.approx(expected_nll - 0.25 * (ratio[0] + ratio[1]) / 2, abs=TOL)
    assert metrics["orpo/log_odds"] == pytest.approx(sum(log_odds) / 2, abs=TOL)
    assert metrics["orpo/or_loss/en"] == pytest.approx(-ratio[0], abs=TOL)
    assert metrics["orpo/margin/en"] == pytest.approx(0.25 * (math.log(0.4) - math.log(0.1)),
                                                      abs=TOL)
    assert metrics["orpo/margin/de"] == pytest.approx(0.25 * (math.log(0.5) - math.log(0.2) / 3),
                                                      abs=TOL)
    assert metrics["orpo/accuracy/en"] == 1.0 and metrics["orpo/accuracy/de"] == 0.0


# --------------------------------------------------------------------------------------------
# Consistency on hand-built hidden states. Pooled directions (rows 0..3):
#   z0 = (1, 0), z1 = (0.6, 0.8), z2 = (0, 1), z3 = (-1, 0)
# so cos = [[1, .6, 0, -1], [.6, 1, .8, -.6], [0, .8, 1, 0], [-1, -.6, 0, 1]].
COS = [[1, 0.6, 0, -1], [0.6, 1, 0.8, -0.6], [0, 0.8, 1, 0], [-1, -0.6, 0, 1]]


def hand_hidden() -> tuple[torch.Tensor, torch.Tensor]:
    """hidden [4, 3, 2] and the pool mask: masked positions hold junk that must not count."""
    junk = [100.0, -50.0]
    hidden = torch.tensor([
        [[2.0, 0.0], [0.0, 0.0], junk],  # mean of the two pooled tokens: (1, 0)
        [[0.6, 0.8], junk, junk],
        [junk, [0.0, 3.0], [0.0, 1.0]],  # pooling starts at the question: mean (0, 2)
        [[-5.0, 0.0], junk, junk],
    ], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 0, 0]], dtype=torch.bool)
    return hidden, mask


def consistency(options: dict, groups: list[int], anchors: list[bool] | None = None):
    hidden, mask = hand_hidden()
    out = Forward(torch.zeros(4, 3, 3), torch.full((4, 3), IGNORE), 4, hidden)
    batch = {"pool_mask": mask, "group_index": torch.tensor(groups),
             "is_anchor": torch.tensor(anchors or [False] * 4)}
    loss, metrics = Consistency(options_for("consistency", options))(out, batch)
    return loss, metrics, hidden


def test_consistency_infonce_by_hand():
    tau = 0.5
    s = [[c / tau for c in row] for row in COS]
    # two groups of two: every row has exactly one positive
    loss, metrics, _ = consistency({"temperature": tau}, [0, 0, 1, 1])
    per_row = [-(s[0][1] - lse(s[0][1], s[0][2], s[0][3])),
               -(s[1][0] - lse(s[1][0], s[1][2], s[1][3])),
               -(s[2][3] - lse(s[2][0], s[2][1], s[2][3])),
               -(s[3][2] - lse(s[3][0], s[3][1], s[3][2]))]
    assert loss.item() == pytest.approx(sum(per_row) / 4, abs=TOL)
    assert metrics["consistency/loss"] == pytest.approx(sum(per_row) / 4, abs=TOL)
    assert metrics["consistency/pairs"] == 2 and metrics["consistency/rows_with_pair"] == 1.0
    # three rows of one group and a lone row: positives averaged per row; the lone row has
    # no positive and leaves the mean (but still serves as a negative)
    loss, metrics, _ = consistency({"temperature": tau}, [0, 0, 0, 1])
    per_row = [-((s[0][1] + s[0][2]) / 2 - lse(s[0][1], s[0][2], s[0][3])),
               -((s[1][0] + s[1][2]) / 2 - lse(s[1][0], s[1][2], s[1][3])),
               -((s[2][0] + s[2][1]) / 2 - lse(s[2][0], s[2][1], s[2][3]))]
    assert loss.item() == pytest.approx(sum(per_row) / 3, abs=TOL)
    assert metrics["consistency/pairs"] == 3 and metrics["consistency/rows_with_pair"] == 0.75


def test_consistency_cosine_by_hand():
    loss, metrics, _ = consistency({"kind": "cosine"}, [0, 0, 1, 1])
    assert loss.item() == pytest.approx(((1 - 0.6) + (1 - 0.0)) / 2, abs=TOL)
    assert metrics["consistency/pairs"] == 2
    loss, metrics, _ = consistency({"kind": "cosine"}, [0, 0, 0, 1])
    assert loss.item() == pytest.approx(((1 - 0.6) + (1 - 0.0) + (1 - 0.8)) / 3, abs=TOL)
    assert metrics["consistency/pairs"] == 3


@pytest.mark.parametrize("kind", ["infonce", "cosine"])
def test_consistency_stop_grad_anchor(kind):
    anchors = [True, False, True, False]
    free, _, h_free = consistency({"kind": kind}, [0, 0, 1, 1], anchors)
    stopped, _, h_stop = consistency({"kind": kind, "stop_grad_anchor": True}, [0, 0, 1, 1],
                                     anchors)
    assert stopped.item() == pytest.approx(free.item(), abs=TOL)  # same value, other gradient
    free.backward()
    stopped.backward()
    assert h_free.grad[0].abs().sum() > 1e-3 and h_free.grad[2].abs().sum() > 1e-3
    assert torch.equal(h_stop.grad[0], torch.zeros(3, 2))
    assert torch.equal(h_stop.grad[2], torch.zeros(3, 2))
    assert h_stop.grad[1].abs().sum() > 1e-3 and h_stop.grad[3].abs().sum() > 1e-3
    # masked (junk) positions never get gradient
    _, mask = hand_hidden()
    assert torch.equal(h_stop.grad[~mask], torch.zeros(int((~mask).sum()), 2))


@pytest.mark.parametrize("kind", ["infonce", "cosine"])
def test_consistency_without_pairs_is_zero_and_keeps_the_graph(kind):
    loss, metrics, hidden = consistency({"kind": kind}, [0, 1, 2, 3])
    assert loss.item() == 0.0 and loss.grad_fn is not None
    assert metrics["consistency/pairs"] == 0 and metrics["consistency/rows_with_pair"] == 0.0
    loss.backward()
    assert torch.equal(hidden.grad, torch.zeros_like(hidden))


# --------------------------------------------------------------------------------------------
# The row encoding

class CharTokenizer:
    """One id per character (id = 3 + code point), BOS added like the trained tokenizer."""

    pad_token_id, bos_token_id, eos_token_id = 0, 1, 2

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return ([1] if add_special_tokens else []) + [3 + ord(c) for c in text]

    def decode(self, ids) -> str:
        return "".join(chr(int(i) - 3) for i in ids if int(i) >= 3)


QA = {"group_id": "g", "lang": "en", "prompt": "Why?", "context": ["ab", "cd"], "chosen": "yes"}


def test_encode_masks_all_but_the_answer_and_eos():
    tok = CharTokenizer()
    ids, labels, start = encode(QA, "yes", tok, max_len=64)
    prompt = tok.encode("ab\ncd\nQ: Why?\nA:")  # BOS + 16 characters
    answer = tok.encode(" yes\n", add_special_tokens=False) + [2]
    assert ids == prompt + answer
    assert labels == [IGNORE] * 17 + answer
    assert start == 7 and tok.decode(ids[start:start + 2]) == "Q:"
    # no passages: the question follows BOS
    ids, _, start = encode({**QA, "context": []}, "yes", tok, max_len=64)
    assert start == 1 and tok.decode(ids[1:3]) == "Q:"


def test_encode_truncates_the_prompt_from_the_left():
    tok = CharTokenizer()
    answer = tok.encode(" yes\n", add_special_tokens=False) + [2]
    ids, labels, start = encode(QA, "yes", tok, max_len=19)  # 23 tokens: BOS, "ab\n" go
    assert len(ids) == 19 and tok.decode(ids) == "cd\nQ: Why?\nA: yes\n"
    assert labels == [IGNORE] * 13 + answer
    assert start == 3 and tok.decode(ids[start:start + 2]) == "Q:"
    ids, labels, start = encode(QA, "yes", tok, max_len=10)  # into the question itself
    assert tok.decode(ids) == "?\nA: yes\n" and labels[-6:] == answer and start == 0
    ids, labels, start = encode(QA, "yes", tok, max_len=4)  # not even the answer fits
    assert ids == labels == answer[:4] and start == 0


def test_encode_rows_pads_and_plain_text_has_loss_everywhere():
    tok = CharTokenizer()
    plain = {"group_id": "p", "lang": "en", "prompt": "", "context": [], "chosen": "plain text"}
    enc = encode_rows([QA, plain], "chosen", tok, max_len=64)
    assert enc["input_ids"].shape == (2, 23)
    text = tok.encode("plain text") + [2]  # BOS + 10 + EOS = 12, padded to 23
    assert enc["input_ids"][1].tolist() == text + [0] * 11
    assert enc["attention_mask"][1].tolist() == [1] * 12 + [0] * 11
    assert enc["labels"][1].tolist() == text + [IGNORE] * 11
    assert enc["question_start"].tolist() == [7, 0]
    assert (enc["labels"][0] != IGNORE).sum() == 6 and enc["attention_mask"][0].all()


# --------------------------------------------------------------------------------------------
# Tiny real model (fp32, CPU)

ROWS = [
    {"group_id": "g1", "lang": "en", "prompt": "What is the currency of Japan?",
     "chosen": "Japanese Yen", "rejected": "Euro", "context": ["Japan uses the Yen."],
     "is_anchor": True},
    {"group_id": "g1", "lang": "de", "prompt": "Was ist die Währung von Japan?",
     "chosen": "Yen", "rejected": "Japanischer Euro",
     "context": ["Japan nutzt den Yen.", "Der Euro gilt in Europa."], "is_anchor": False},
    {"group_id": "g2", "lang": "en", "prompt": "Where is Berlin?", "chosen": "In Germany",
     "rejected": "In Spain", "context": [], "is_anchor": True},
    {"group_id": "g2", "lang": "de", "prompt": "Wo liegt Berlin?", "chosen": "In Deutschland",
     "rejected": "In Spanien", "context": ["Berlin ist die Hauptstadt."], "is_anchor": False},
]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    texts = [rag_prompt(r["prompt"], r["context"]) + answer_text(r[k])
             for r in ROWS for k in ("chosen", "rejected")] * 5
    tok = train_tokenizer(texts, vocab_size=320)
    cfg = ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      max_len=128)
    model = build_model(cfg, tok, seed=0).eval()
    return tok, model


def perturbed(model: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    out = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return out


def test_encode_rows_with_the_trained_tokenizer(tiny):
    tok, _ = tiny
    enc = encode_rows(ROWS, "chosen", tok, max_len=128)
    for i, row in enumerate(ROWS):
        ids, labels = enc["input_ids"][i], enc["labels"][i]
        real = ids[enc["attention_mask"][i].bool()]
        assert tok.decode(real) == "<s>" + rag_prompt(row["prompt"], row["context"]) \
            + answer_text(row["chosen"]) + "</s>"
        assert tok.decode(labels[labels != IGNORE]) == answer_text(row["chosen"]) + "</s>"
        q = int(enc["question_start"][i])
        assert tok.decode(ids[q]) == "Q" and tok.decode(ids[q:q + 2]) == "Q:"
        assert tok.decode(ids[:q], skip_special_tokens=True) == "".join(
            f"{p}\n" for p in row["context"])
    # over-long: the passages go, the question and the answer stay
    long = {**ROWS[1], "context": ["Japan nutzt den Yen. " * 30]}
    ids, labels, q = encode(long, long["chosen"], tok, max_len=40)
    assert len(ids) == 40 and ids[0] != tok.bos_token_id
    assert tok.decode(ids).endswith("\nQ: Was ist die Währung von Japan?\nA: Yen\n</s>")
    assert tok.decode(ids[q:q + 2]) == "Q:"
    assert tok.decode([t for t in labels if t != IGNORE]) == " Yen\n</s>"


def same_tokens(ours: dict, prefix: str, trl_ids: torch.Tensor, trl_mask: torch.Tensor,
                trl_loss_mask: torch.Tensor) -> None:
    """Row by row: the same input ids, and loss on the same positions."""
    for i in range(trl_ids.shape[0]):
        n = int(ours[f"{prefix}attention_mask"][i].sum())
        assert int(trl_mask[i].sum()) == n
        assert trl_ids[i, :n].tolist() == ours[f"{prefix}input_ids"][i, :n].tolist()
        assert trl_loss_mask[i, :n].tolist() == (ours[f"{prefix}labels"][i, :n]
                                                 != IGNORE).tolist()


def preference_dataset(rows):
    """TRL's prompt/chosen/rejected strings for our rows: the prompt text, and the answer text
    without EOS (TRL appends EOS itself: DPO as the string "</s>", which the tokenizer maps to
    the EOS id; ORPO as the id). Our byte-level pre-tokenizer splits "...A:" from " answer", so
    TRL's tokenization of prompt + answer equals ours of prompt and answer apart: the tests
    assert this rather than assume it."""
    from datasets import Dataset

    return Dataset.from_dict({
        "prompt": [rag_prompt(r["prompt"], r["context"]) for r in rows],
        "chosen": [answer_text(r["chosen"]) for r in rows],
        "rejected": [answer_text(r["rejected"]) for r in rows],
    })


def test_dpo_equals_trl(tiny, tmp_path):
    from trl import DPOConfig, DPOTrainer

    tok, base = tiny
    reference, policy = copy.deepcopy(base), perturbed(base, 0.3, seed=1)
    rows = [dict(r) for r in ROWS]
    # our reference pass (as ray_align.train.reference does it), stored in the rows
    with torch.no_grad():
        enc = encode_rows(rows, "chosen", tok, 128)
        enc |= {f"rejected_{k}": v for k, v in encode_rows(rows, "rejected", tok, 128).items()}
        ref = forward(reference, enc | {"pad_token_id": tok.pad_token_id}, None)
    for r, c, j in zip(rows, ref.chosen_logps.tolist(), ref.rejected_logps.tolist(), strict=True):
        r["ref_chosen_logp"], r["ref_rejected_logp"] = c, j
    ours = Composite(["dpo"], options={"dpo": {"beta": 0.5}})
    batch = ours.collate(rows, tok, 128)
    loss, metrics = ours(policy, batch)
    with torch.no_grad():
        out = forward(policy, batch, None)

    args = DPOConfig(output_dir=str(tmp_path), beta=0.5, bf16=False,
                     gradient_checkpointing=False, precompute_ref_log_probs=False,
                     report_to=[], use_cpu=True, max_length=None, seed=0)
    trainer = DPOTrainer(model=copy.deepcopy(policy), ref_model=copy.deepcopy(reference),
                         args=args, train_dataset=preference_dataset(rows),
                         processing_class=copy.deepcopy(tok))
    tb = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    n = len(rows)
    for prefix, part in (("", slice(0, n)), ("rejected_", slice(n, 2 * n))):
        same_tokens(batch, prefix, tb["input_ids"][part], tb["attention_mask"][part],
                    tb["completion_mask"][part].bool())
    trl_loss = trainer.compute_loss(trainer.model, tb)
    with torch.no_grad():
        trl_chosen, trl_rejected = trainer.compute_ref_log_probs(trainer.model, tb)
        trl_ref_chosen, trl_ref_rejected = trainer.compute_ref_log_probs(trainer.ref_model, tb)

    assert abs(loss.item() - math.log(2)) > 1e-2  # policy != reference: a real comparison
    assert loss.item() == pytest.approx(trl_loss.item(), abs=1e-5)
    torch.testing.assert_close(out.chosen_logps, trl_chosen, rtol=0, atol=1e-4)
    torch.testing.assert_close(out.rejected_logps, trl_rejected, rtol=0, atol=1e-4)
    torch.testing.assert_close(batch["ref_chosen_logps"], trl_ref_chosen, rtol=0, atol=1e-4)
    torch.testing.assert_close(batch["ref_rejected_logps"], trl_ref_rejected, rtol=0, atol=1e-4)
    mode = "train" if trainer.model.training else "eval"
    assert metrics["dpo/margin"] == pytest.approx(
        trainer._metrics[mode]["rewards/margins"][-1], abs=1e-5)
    assert metrics["dpo/accuracy"] == trainer._metrics[mode]["rewards/accuracies"][-1]


def test_orpo_equals_trl(tiny, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trl.experimental warns on import
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    tok, base = tiny
    model = perturbed(base, 0.05, seed=2)
    beta = 0.5
    args = ORPOConfig(output_dir=str(tmp_path), beta=beta, bf16=False,
                      gradient_checkpointing=False, report_to=[], use_cpu=True, max_length=128,
                      seed=0)
    trainer = ORPOTrainer(model=copy.deepcopy(model), args=args,
                          train_dataset=preference_dataset(ROWS),
                          processing_class=copy.deepcopy(tok))
    tb = trainer.data_collator([trainer.train_dataset[i] for i in range(len(ROWS))])
    with torch.no_grad():
        trl_loss, trl_metrics = trainer.get_batch_loss_metrics(trainer.model, tb)

    full = Composite(["orpo"], options={"orpo": {"beta": beta, "nll": "full"}})
    batch = full.collate(ROWS, tok, 128)
    same_tokens(batch, "", tb["chosen_input_ids"], tb["chosen_attention_mask"],
                tb["chosen_labels"] != -100)
    same_tokens(batch, "rejected_", tb["rejected_input_ids"], tb["rejected_attention_mask"],
                tb["rejected_labels"] != -100)
    with torch.no_grad():
        loss_full, m_full = full(model, batch)
        # nll: response (our default) = response-token NLL (independently: cross-entropy on
        # TRL's chosen labels, which mask the prompt) - beta * TRL's mean log sigmoid(log odds)
        response = Composite(["orpo"], options={"orpo": {"beta": beta}})
        loss_response, m_response = response(model, batch)
        sft, _ = Composite(["sft"])(model, batch)
        logits = model(input_ids=tb["chosen_input_ids"],
                       attention_mask=tb["chosen_attention_mask"]).logits
        nll = F.cross_entropy(logits[:, :-1].flatten(0, 1), tb["chosen_labels"][:, 1:].flatten(),
                              ignore_index=-100)

    assert loss_full.item() == pytest.approx(trl_loss.item(), abs=1e-5)
    assert m_full["orpo/nll"] == pytest.approx(trl_metrics["nll_loss"], abs=1e-5)
    assert m_full["orpo/log_odds"] == pytest.approx(trl_metrics["log_odds_chosen"], abs=1e-5)
    assert m_full["orpo/margin"] == pytest.approx(trl_metrics["rewards/margins"], abs=1e-5)
    assert m_full["orpo/accuracy"] == trl_metrics["rewards/accuracies"]
    expected = nll.item() - beta * trl_metrics["log_odds_ratio"]
    assert loss_response.item() == pytest.approx(expected, abs=1e-5)
    assert m_response["orpo/nll"] == pytest.approx(sft.item(), abs=1e-6)
    assert abs(loss_full.item() - loss_response.item()) > 1e-3  # the two settings differ


# --------------------------------------------------------------------------------------------
# The composite


def test_composite_is_the_weighted_sum(tiny):
    tok, base = tiny
    model = perturbed(base, 0.05, seed=3)
    options = {"orpo": {"beta": 0.2}, "consistency": {"layer": 1, "temperature": 0.5}}
    both = Composite(["orpo", "consistency"], [1.0, 0.1], options)
    assert both.needs_pairs and not both.needs_reference and both.layer == 1
    batch = both.collate(ROWS, tok, 128)
    assert batch["group_index"].tolist() == [0, 0, 1, 1]
    assert batch["is_anchor"].tolist() == [True, False, True, False]
    width = batch["input_ids"].shape[1]
    pool = (torch.arange(width) >= batch["question_start"][:, None]) \
        & batch["attention_mask"].bool()
    assert torch.equal(batch["pool_mask"], pool)
    total, metrics = both(model, batch)
    orpo, m_orpo = Composite(["orpo"], options=options)(model, batch)
    cons, m_cons = Composite(["consistency"], options=options)(model, batch)
    assert cons.item() > 1e-3 and orpo.item() > 1e-3
    assert total.item() == pytest.approx(1.0 * orpo.item() + 0.1 * cons.item(), abs=1e-6)
    assert metrics["loss"] == pytest.approx(total.item(), abs=1e-6)
    assert metrics["orpo/loss"] == pytest.approx(m_orpo["orpo/loss"], abs=1e-6)
    assert metrics["consistency/loss"] == pytest.approx(m_cons["consistency/loss"], abs=1e-6)
    assert metrics["consistency/pairs"] == 2
    # per-language metrics (two rows per language, so their mean is the batch mean)
    for key in ("orpo/margin", "orpo/accuracy"):
        assert (metrics[f"{key}/en"] + metrics[f"{key}/de"]) / 2 == pytest.approx(
            metrics[key], abs=1e-6)
    or_loss = (metrics["orpo/or_loss/en"] + metrics["orpo/or_loss/de"]) / 2
    assert metrics["orpo/loss"] == pytest.approx(metrics["orpo/nll"] + 0.2 * or_loss, abs=1e-6)
    total.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_composite_asks_for_what_its_objectives_need(tiny):
    tok, _ = tiny
    rows = [dict(r) for r in ROWS]
    rows[3]["rejected"] = None
    with pytest.raises(ValueError, match="row g2/de has no `rejected`"):
        Composite(["orpo", "consistency"], [1.0, 0.1]).collate(rows, tok, 128)
    # consistency alone does not need pairs: only the chosen rows are encoded
    batch = Composite(["sft", "consistency"]).collate(rows, tok, 128)
    assert "rejected_input_ids" not in batch and "pool_mask" in batch
    # DPO needs the reference pass
    with pytest.raises(ValueError, match="no reference log-probs"):
        Composite(["dpo"]).collate(ROWS, tok, 128)
    with pytest.raises(KeyError, match="unknown objective"):
        options_for("kto", {})
