"""Objectives on a tiny real model (fp32, CPU): equality with TRL 1.16 (DPO and ORPO), the
encoding with a trained tokenizer, and the weighted composite."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from ray_align.config import ModelConfig
from ray_align.model import build_model, train_tokenizer
from ray_align.prompts import answer_text, rag_prompt
from ray_align.train.objectives import Composite, options_for
from ray_align.train.objectives.base import (
    IGNORE,
    answer_positions,
    encode,
    encode_rows,
    forward,
    step_norm,
)

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


@pytest.mark.parametrize("names, options", [
    (["sft"], {}), (["orpo", "consistency"], {"consistency": {"layer": 1}}),
    (["dpo"], {}), (["orpo"], {"orpo": {"nll": "full"}}),
])
def test_logits_at_the_answer_positions_give_the_same_loss_and_gradient(tiny, names, options):
    """`forward` computes logits only where some row predicts an answer token (the LM head and
    the vocabulary-wide log-softmax are most of a step on short answers after long prompts):
    loss, metrics and every gradient equal those from every position's logits."""
    tok, base = tiny
    rows = [r | {"ref_chosen_logp": -20.0 - i, "ref_rejected_logp": -21.0 + i}
            for i, r in enumerate(ROWS)]
    batch = Composite(names, options=options).collate(rows, tok, 128)
    labels = batch["labels"]
    kept = answer_positions(labels)
    assert 0 < len(kept) < labels.shape[1] - 1  # the prompts are longer than the answers
    results = []
    for every in (True, False):
        model = perturbed(base, 0.05, seed=5)
        composite = Composite(names, options=options, every_position=every)
        loss, metrics = composite(model, batch)
        loss.backward()
        results.append((loss.item(), metrics, [p.grad.clone() for p in model.parameters()]))
    (full, m_full, g_full), (kept_loss, m_kept, g_kept) = results
    assert kept_loss == pytest.approx(full, abs=1e-6)
    assert m_kept.keys() == m_full.keys()
    assert all(m_kept[k] == pytest.approx(m_full[k], abs=1e-6) for k in m_full)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_kept, g_full, strict=True))
    with torch.no_grad():  # the positions are used unless a term needs every one
        out = forward(base, batch | {"pad_token_id": tok.pad_token_id}, None)
    assert out.positions is not None and out.logits.shape[1] == len(out.positions)
    assert torch.equal(out.positions, answer_positions(out.labels))
    assert len(out.positions) < out.labels.shape[1] - 1
    if options.get("orpo", {}).get("nll") == "full":
        assert Composite(names, options=options).every_position
        with pytest.raises(ValueError, match="every position"):
            out.nll(batch["input_ids"])


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


@pytest.mark.parametrize("names, options", [
    (["sft"], {}), (["orpo"], {}), (["orpo"], {"orpo": {"nll": "full"}}), (["dpo"], {}),
])
def test_micro_batches_with_step_norm_add_up_to_the_whole_step(tiny, names, options):
    """Gradient accumulation is exact: the mean of the micro-batch losses (DeepSpeed divides
    the accumulated gradient by their number) is the loss of the step as one batch, for
    token-averaged (NLL) and row-averaged (DPO, odds ratio) terms, with micro-batches of
    unequal rows and tokens."""
    tok, base = tiny
    model = perturbed(base, 0.05, seed=4)
    rows = [r | {"ref_chosen_logp": -20.0 - i, "ref_rejected_logp": -21.0 + i}
            for i, r in enumerate(ROWS)]
    objective = Composite(names, options=options)
    whole, _ = objective(model, objective.collate(rows, tok, 128))
    parts = [objective.collate(p, tok, 128) for p in (rows[:1], rows[1:])]
    norm = step_norm(parts)
    assert norm["rows"] == 2.0
    micro = [objective(model, p | {"norm": norm})[0] for p in parts]
    assert abs(micro[0].item() - micro[1].item()) > 1e-3  # unequal shares
    torch.testing.assert_close(sum(micro) / len(micro), whole, rtol=0, atol=1e-6)
