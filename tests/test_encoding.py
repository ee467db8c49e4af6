"""The row encoding: which tokens carry loss, left truncation, padding (a character tokenizer)."""

from __future__ import annotations

from ray_align.train.objectives.base import IGNORE, encode, encode_rows


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
