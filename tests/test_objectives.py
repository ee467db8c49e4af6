"""Training objectives: DPO, ORPO and consistency losses computed by hand on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from ray_align.train.objectives import Forward, options_for
from ray_align.train.objectives.base import IGNORE
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
