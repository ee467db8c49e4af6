"""Tiny models built here: a local byte-level BPE tokenizer and a random-weight Llama."""

import pyarrow as pa
import torch

from ray_align.config import ModelConfig
from ray_align.eval.generation import Generator
from ray_align.model import build_model, load_model, load_tokenizer, save, train_tokenizer
from ray_align.prompts import rag_prompt

TEXTS = ["What is the currency of Japan? Japanese Yen", "日本の通貨は何ですか？ 日本円",
         "जापान की मुद्रा क्या है? जापानी येन", "สกุลเงินของญี่ปุ่นคืออะไร เยน"] * 20


def test_tokenizer_round_trips_every_script_and_adds_bos():
    tok = train_tokenizer(TEXTS, vocab_size=400)
    for text in TEXTS[:4]:
        ids = tok.encode(text)
        assert ids[0] == tok.bos_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.encode("x", add_special_tokens=False)[0] != tok.bos_token_id


def test_build_save_load_generate(tmp_path):
    tok = train_tokenizer(TEXTS, vocab_size=400)
    cfg = ModelConfig(vocab_size=400, hidden_size=32, num_layers=1, num_heads=2,
                      intermediate_size=64, max_len=64)
    model = build_model(cfg, tok, seed=0)
    path = save(model, tok, tmp_path / "m")
    assert (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()
    loaded = load_model(path)
    x = torch.tensor([tok.encode(TEXTS[0])])
    assert torch.allclose(model(x).logits, loaded(x).logits)
    assert load_tokenizer(path).encode(TEXTS[1]) == tok.encode(TEXTS[1])
    # the evaluation actor, called directly on a batch
    gen = Generator(str(path), max_new_tokens=4, max_len=64)
    rows = [{"prompt": rag_prompt("What is the currency of Japan?", ["Japan uses the Yen."])},
            {"prompt": rag_prompt("日本の通貨は何ですか？", ["x " * 200])}]  # over-long
    out = gen(pa.Table.from_pylist(rows)).to_pylist()
    assert [isinstance(r["prediction"], str) for r in out] == [True, True]
