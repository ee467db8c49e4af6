"""Benchmark adapters on small files in each benchmark's published format (read on a real
local Ray), and the log-likelihood scorer on a tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from ray_align.config import ModelConfig
from ray_align.eval.benchmarks import BENCHMARKS, get_benchmark
from ray_align.eval.benchmarks.base import ROW
from ray_align.eval.loglik import LoglikScorer, continuation_logprobs, encode_pair
from ray_align.model import build_model, save, train_tokenizer

MMLU_CHOICES = [" A", " B", " C", " D"]


def read(bench) -> list[dict]:
    """Every row, sorted by (lang, id); the dataset has the `ROW` schema."""
    ds = bench.rows()
    assert ds.schema().base_schema == ROW
    return sorted(ds.take_all(), key=lambda r: (r["lang"], r["id"]))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_error(bench) -> str:
    """The message of the error a bad value raises in the stream."""
    with pytest.raises(Exception) as info:  # noqa: B017 (Ray wraps the ValueError)
        bench.rows().take_all()
    return str(info.value)


def test_registry():
    assert set(BENCHMARKS) == {"rag", "mgsm", "pawsx", "lambada", "mmmlu", "global_mmlu"}
    assert all(get_benchmark(name).name == name for name in BENCHMARKS)
    with pytest.raises(ValueError, match="unknown benchmark 'xnli'.*mgsm, pawsx"):
        get_benchmark("xnli")


# -- MGSM ---------------------------------------------------------------------------------

MGSM_EN = ('Janet has 3 "red" apples and buys 2. How many?\t5\n'
           "A book costs $1,000 dollars' worth of coins, halved. How much?\t500\n"
           "Tom runs 4 km a day for 7 days. How far?\t28\n")
MGSM_DE = ('Janet hat 3 "rote" Äpfel und kauft 2. Wie viele?\t5\n'
           "Ein Buch kostet 1.000 Münzen, halbiert. Wie viel?\t500\n"
           "Tom läuft 7 Tage je 4 km. Wie weit?\t28\n")


def test_mgsm_rows(ray_local, tmp_path):
    write(tmp_path / "mgsm_en.tsv", MGSM_EN)
    write(tmp_path / "mgsm_de.tsv", MGSM_DE)
    write(tmp_path / "mgsm_fr.tsv", "x\t1\n")  # not asked for
    rows = read(get_benchmark("mgsm")(str(tmp_path), langs=["de", "en"]))
    assert rows == [
        {"id": "0", "lang": "de", "prompt": 'Frage: Janet hat 3 "rote" Äpfel und kauft 2. Wie '
         'viele?\nAntwort:', "target": "5", "choices": [], "source": "mgsm_de.tsv:0"},
        {"id": "1", "lang": "de", "prompt": "Frage: Ein Buch kostet 1.000 Münzen, halbiert. "
         "Wie viel?\nAntwort:", "target": "500", "choices": [], "source": "mgsm_de.tsv:1"},
        {"id": "2", "lang": "de", "prompt": "Frage: Tom läuft 7 Tage je 4 km. Wie weit?\n"
         "Antwort:", "target": "28", "choices": [], "source": "mgsm_de.tsv:2"},
        {"id": "0", "lang": "en", "prompt": 'Question: Janet has 3 "red" apples and buys 2. How '
         'many?\nAnswer:', "target": "5", "choices": [], "source": "mgsm_en.tsv:0"},
        {"id": "1", "lang": "en", "prompt": "Question: A book costs $1,000 dollars' worth of "
         "coins, halved. How much?\nAnswer:", "target": "500", "choices": [],
         "source": "mgsm_en.tsv:1"},
        {"id": "2", "lang": "en", "prompt": "Question: Tom runs 4 km a day for 7 days. How far?"
         "\nAnswer:", "target": "28", "choices": [], "source": "mgsm_en.tsv:2"},
    ]
    # every published language found, the first `limit` lines of each
    limited = read(get_benchmark("mgsm")(str(tmp_path), limit=1))
    assert [(r["lang"], r["id"], r["target"]) for r in limited] == [
        ("de", "0", "5"), ("en", "0", "5"), ("fr", "0", "1")]


def test_mgsm_correct_is_lm_eval_flexible_extract():
    mgsm = get_benchmark("mgsm")("unused")
    assert mgsm.correct("The answer is 1,234.", "1234")
    assert not mgsm.correct("12 apples then 7", "12")
    assert mgsm.correct("12 apples then 7", "7")
    assert mgsm.correct("$18", "18")
    assert not mgsm.correct("no number here", "18")


def test_mgsm_errors(ray_local, tmp_path):
    write(tmp_path / "mgsm_en.tsv", MGSM_EN)
    with pytest.raises(ValueError, match="nowhere: no such folder"):
        get_benchmark("mgsm")(str(tmp_path / "nowhere")).rows()
    with pytest.raises(ValueError, match=r"mgsm_de\.tsv: no such file \(language 'de'\)"):
        get_benchmark("mgsm")(str(tmp_path), langs=["en", "de"]).rows()
    with pytest.raises(ValueError, match="no file for language 'xx'"):
        get_benchmark("mgsm")(str(tmp_path), langs=["xx"]).rows()
    write(tmp_path / "mgsm_de.tsv", "only a question\n")
    with pytest.raises(ValueError, match=r"mgsm_de\.tsv: CSV parse error: Expected 2 columns"):
        get_benchmark("mgsm")(str(tmp_path), langs=["de"]).rows()
    write(tmp_path / "mgsm_en.tsv", "Q one\t5\nQ two\tfive\n")
    assert "mgsm_en.tsv row 1: answer_number is 'five', not a number" in run_error(
        get_benchmark("mgsm")(str(tmp_path), langs=["en"]))


# -- PAWS-X -------------------------------------------------------------------------------

PAWS_HEADER = "id\tsentence1\tsentence2\tlabel\n"
PAWS_EN = PAWS_HEADER + (
    "1\tHe was born in Paris , France .\tHe was born in Paris , France .\t1\n"
    '2\tThe "Tabaci" flows into the Leurda .\tThe Leurda flows into the "Tabaci" .\t0\n'
    "3\t\tAn empty first sentence .\t1\n"
    '4\tKim said "yes ; then left .\tKim left , then said "yes .\t1\n')
PAWS_DE = PAWS_HEADER + (
    "1\tEr wurde in Paris geboren .\tEr ist in Paris geboren .\t1\n"
    '2\tSie sagte "ja .\tSie sagte nein .\t0\n'
    "3\tEin Satz .\t\t0\n"
    "4\tDas ist gut ,\tDas ist schlecht\t0\n")


def paws_rows(lang, ask, yes, no, items):
    """Expected rows: items are (id, row, s1 as lm-eval cuts it, s2 likewise, label)."""
    rows = []
    for pid, row, s1, s2, label in items:
        pair = [f"{s1}, {ask}? {no}, {s2}", f"{s1}, {ask}? {yes}, {s2}"]
        rows.append({"id": pid, "lang": lang, "prompt": "", "target": pair[label],
                     "choices": pair, "source": f"{lang}/test_2k.tsv:{row}"})
    return rows


def test_pawsx_rows(ray_local, tmp_path):
    write(tmp_path / "en" / "test_2k.tsv", PAWS_EN)
    write(tmp_path / "de" / "test_2k.tsv", PAWS_DE)
    write(tmp_path / "de" / "dev_2k.tsv", PAWS_HEADER + "9\tA .\tB .\t1\n")
    rows = read(get_benchmark("pawsx")(str(tmp_path)))
    assert rows == paws_rows("de", "richtig", "Ja", "Nein", [
        ("1", 0, "Er wurde in Paris geboren", "er ist in Paris geboren.", 1),
        ("2", 1, 'Sie sagte"ja', "sie sagte nein.", 0),
        ("4", 3, "Das ist gut", "das ist schlecht", 0),
    ]) + paws_rows("en", "right", "Yes", "No", [
        ("1", 0, "He was born in Paris, France", "he was born in Paris, France.", 1),
        ("2", 1, 'The"Tabaci"flows into the Leurda', 'the Leurda flows into the"Tabaci".', 0),
        ("4", 3, 'Kim said"yes ; then left', 'kim left, then said"yes.', 1),
    ])
    dev = read(get_benchmark("pawsx")(str(tmp_path), langs=["de"], split="dev"))
    assert [(r["id"], r["target"], r["source"]) for r in dev] == [
        ("9", "A, richtig? Ja, b.", "de/dev_2k.tsv:0")]


def test_pawsx_errors(ray_local, tmp_path):
    write(tmp_path / "de" / "test_2k.tsv", "id\tsentence1\tsentence2\n1\ta\tb\n")
    with pytest.raises(ValueError, match=r"de/test_2k\.tsv: no column 'label'"):
        get_benchmark("pawsx")(str(tmp_path), langs=["de"]).rows()
    write(tmp_path / "de" / "test_2k.tsv", PAWS_HEADER + "1\ta\tb\t1\n2\tc\td\tyes\n")
    assert "de/test_2k.tsv row 1: label is 'yes', not 0 or 1" in run_error(
        get_benchmark("pawsx")(str(tmp_path), langs=["de"]))
    write(tmp_path / "de" / "test_2k.tsv", PAWS_HEADER + "1\ta\tb\t1\n2\tc\td\te\t0\n")
    assert "de/test_2k.tsv row 1: CSV parse error: Expected 4 columns, got 5" in run_error(
        get_benchmark("pawsx")(str(tmp_path), langs=["de"]))


# -- LAMBADA ------------------------------------------------------------------------------

def test_lambada_rows(ray_local, tmp_path):
    texts = {"en": ['She opened the "old" door and saw her brother', "The cat sat on the mat",
                    "He said: it is mine"],
             "de": ["Sie öffnete die alte Tür und sah ihren Bruder",
                    "Die Katze saß auf der Matte", "Er sagte: es ist meins"]}
    for lang, lines in texts.items():  # the hub repository's layout: data/*.jsonl
        write(tmp_path / "data" / f"lambada_test_{lang}.jsonl",
              "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in lines))
    rows = read(get_benchmark("lambada")(str(tmp_path), langs=["en", "de"]))
    expect = [("de", "Sie öffnete die alte Tür und sah ihren", " Bruder"),
              ("de", "Die Katze saß auf der", " Matte"), ("de", "Er sagte: es ist", " meins"),
              ("en", 'She opened the "old" door and saw her', " brother"),
              ("en", "The cat sat on the", " mat"), ("en", "He said: it is", " mine")]
    assert rows == [{"id": str(i % 3), "lang": lang, "prompt": prompt, "target": target,
                     "choices": [target], "source": f"lambada_test_{lang}.jsonl:{i % 3}"}
                    for i, (lang, prompt, target) in enumerate(expect)]


# -- MMMLU --------------------------------------------------------------------------------

MMMLU_HEADER = ",Question,A,B,C,D,Answer,Subject\n"


def test_mmmlu_rows(ray_local, tmp_path):
    write(tmp_path / "test" / "mmlu_DE_DE.csv", MMMLU_HEADER + (
        '0," Was ist 2+2, ""ungefähr""?\nBitte wählen.",3,4,5,6,B,elementary_mathematics\n'
        "1,Hauptstadt von Frankreich?,Paris,Rom,,Berlin,A,geography\n"
        "2,Welche Farbe hat der Himmel?,grün,rot,blau,gelb,C,miscellaneous\n"))
    write(tmp_path / "test" / "mmlu_SW_KE.csv", MMMLU_HEADER + (
        '0,"2+2 ni ngapi, ""takriban""?",3,4,5,6,B,elementary_mathematics\n'
        "1,Mji mkuu wa Ufaransa?,Paris,Roma,London,Berlin,A,geography\n"
        "2,Anga lina rangi gani?,kijani,nyekundu,bluu,njano,C,miscellaneous\n"))
    rows = read(get_benchmark("mmmlu")(str(tmp_path)))
    expect = [
        ("de", 'Was ist 2+2, "ungefähr"?\nBitte wählen.', ["3", "4", "5", "6"], "B"),
        ("de", "Hauptstadt von Frankreich?", ["Paris", "Rom", "", "Berlin"], "A"),
        ("de", "Welche Farbe hat der Himmel?", ["grün", "rot", "blau", "gelb"], "C"),
        ("sw", '2+2 ni ngapi, "takriban"?', ["3", "4", "5", "6"], "B"),
        ("sw", "Mji mkuu wa Ufaransa?", ["Paris", "Roma", "London", "Berlin"], "A"),
        ("sw", "Anga lina rangi gani?", ["kijani", "nyekundu", "bluu", "njano"], "C"),
    ]
    files = {"de": "test/mmlu_DE_DE.csv", "sw": "test/mmlu_SW_KE.csv"}
    assert rows == [
        {"id": str(i % 3), "lang": lang,
         "prompt": f"{q}\nA. {o[0]}\nB. {o[1]}\nC. {o[2]}\nD. {o[3]}\nAnswer:",
         "target": f" {answer}", "choices": MMLU_CHOICES, "source": f"{files[lang]}:{i % 3}"}
        for i, (lang, q, o, answer) in enumerate(expect)]
    assert rows[0]["prompt"] == ('Was ist 2+2, "ungefähr"?\nBitte wählen.\nA. 3\nB. 4\nC. 5\n'
                                 "D. 6\nAnswer:")


def test_mmmlu_errors(ray_local, tmp_path):
    with pytest.raises(ValueError, match=r"no file for language 'en' \(published: ar bn de"):
        get_benchmark("mmmlu")(str(tmp_path), langs=["en"]).rows()
    write(tmp_path / "test" / "mmlu_JA_JP.csv", ",Question,A,B,C,Answer,Subject\n0,q,a,b,c,A,s\n")
    with pytest.raises(ValueError, match=r"mmlu_JA_JP\.csv: no column 'D'"):
        get_benchmark("mmmlu")(str(tmp_path), langs=["ja"]).rows()
    write(tmp_path / "test" / "mmlu_HI_IN.csv",
          MMMLU_HEADER + "0,q,a,b,c,d,A,s\n1,q,a,b,c,d,E,s\n")
    assert "test/mmlu_HI_IN.csv row 1: Answer is 'E', not one of A B C D" in run_error(
        get_benchmark("mmmlu")(str(tmp_path), langs=["hi"]))


# -- Global-MMLU --------------------------------------------------------------------------

GLOBAL_MMLU = {  # every published column, in the published order
    "sample_id": ["abstract_algebra/test/0", "anatomy/test/5", "world_religions/test/170"],
    "subject": ["abstract_algebra", "anatomy", "world_religions"],
    "subject_category": ["STEM", "Medical", "Humanities"],
    "question": ["Find the degree of Q(sqrt(2)) over Q. ", "Which bone is in the ear?",
                 "Where is the \"Kaaba\"?"],
    "option_a": ["0", "stapes", "Mecca"], "option_b": ["4", "femur", "Medina"],
    "option_c": ["2", "tibia", "Jerusalem"], "option_d": ["6", "ulna", "Cairo"],
    "answer": ["C", "A", "A"],
    "required_knowledge": ["['none', 'none']", "['none']", "['cultural']"],
    "time_sensitive": ["['No', 'No']", "['No']", "['No']"],
    "reference": ["['-', '-']", "['-']", "['-']"],
    "culture": ["[]", "[]", "['Arab']"], "region": ["[]", "[]", "['Middle East']"],
    "country": ["[]", "[]", "['Saudi Arabia']"],
    "cultural_sensitivity_label": ["CA", "CA", "CS"],
    "is_annotated": [True, False, True],
}


def test_global_mmlu_rows(ray_local, tmp_path):
    for lang in ("en", "sw"):
        (tmp_path / lang).mkdir()
        table = dict(GLOBAL_MMLU, question=[f"{q} [{lang}]" for q in GLOBAL_MMLU["question"]])
        pq.write_table(pa.table(table), tmp_path / lang / "test-00000-of-00001.parquet")
    rows = read(get_benchmark("global_mmlu")(str(tmp_path), langs=["sw", "en"], limit=3))
    expect = []
    for lang in ("en", "sw"):
        for i, sid in enumerate(GLOBAL_MMLU["sample_id"]):
            o = [GLOBAL_MMLU[f"option_{k}"][i] for k in "abcd"]
            q = f"{GLOBAL_MMLU['question'][i]} [{lang}]"
            expect.append({
                "id": sid, "lang": lang,
                "prompt": f"{q}\nA. {o[0]}\nB. {o[1]}\nC. {o[2]}\nD. {o[3]}\nAnswer:",
                "target": " " + GLOBAL_MMLU["answer"][i], "choices": MMLU_CHOICES,
                "source": f"{lang}/test-00000-of-00001.parquet:{i}"})
    assert rows == sorted(expect, key=lambda r: (r["lang"], r["id"]))
    assert rows[0]["prompt"] == ("Find the degree of Q(sqrt(2)) over Q.  [en]\nA. 0\nB. 4\n"
                                 "C. 2\nD. 6\nAnswer:")
    (tmp_path / "de").mkdir()
    pq.write_table(pa.table({k: v for k, v in GLOBAL_MMLU.items() if k != "option_d"}),
                   tmp_path / "de" / "test-00000-of-00001.parquet")
    with pytest.raises(ValueError, match=r"de/test-00000-of-00001\.parquet: no column 'option_d'"):
        get_benchmark("global_mmlu")(str(tmp_path), langs=["de"]).rows()


# -- log-likelihoods ------------------------------------------------------------------------

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
    for (g, g_greedy), (w, w_greedy) in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=1e-5)
        assert g_greedy == w_greedy
    assert got[4][1] is True and got[0][1] is False
    # alone (no padding) the same numbers as in a padded batch
    assert continuation_logprobs(model, tok, pairs[2:3], 64)[0][0] == pytest.approx(
        got[2][0], abs=1e-5)
    # a context's trailing space moves to the continuation, as lm-eval does
    assert continuation_logprobs(model, tok, [("Answer: ", "C")], 64)[0][0] == pytest.approx(
        got[5][0], abs=1e-5)


def test_continuation_logprobs_left_truncates_the_context(tiny):
    model, tok, _ = tiny
    context, cont = "What is the currency of Japan? " * 4 + "The cat sat on the", " mat."
    ctx, whole = tok(context)["input_ids"], tok(context + cont)["input_ids"]
    n = len(whole) - len(ctx)
    window = whole[-9:]  # max_len 8: the last 9 tokens, the last one not an input
    with torch.inference_mode():
        logp = model(torch.tensor([window[:-1]])).logits[0, -n:].log_softmax(-1)
    want = logp.gather(-1, torch.tensor(window[-n:])[:, None]).sum().item()
    got = continuation_logprobs(model, tok, [(context, cont)], max_len=8)[0][0]
    assert got == pytest.approx(want, abs=1e-5)


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


# -- the evaluate stage on them ------------------------------------------------------------

@pytest.mark.slow
def test_evaluate_runs_each_kind_of_benchmark_for_two_models(ray_local, tiny, tmp_path):
    """`evaluate.benchmarks` with a generated (MGSM), a multiple-choice (PAWS-X) and a
    log-likelihood (LAMBADA) benchmark, two models: every item answered by both, and the
    reported scores are the predictions' shares (accuracy, paired discordant counts)."""
    from ray_align.config import load_config
    from ray_align.eval.stage import run_evaluate

    model, tok, a = tiny
    b = save(build_model(ModelConfig(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2,
                                     intermediate_size=64, max_len=64), tok, seed=1),
             tok, tmp_path / "b")
    write(tmp_path / "mgsm" / "mgsm_en.tsv", MGSM_EN)
    write(tmp_path / "mgsm" / "mgsm_de.tsv", MGSM_DE)
    write(tmp_path / "paws" / "en" / "test_2k.tsv", PAWS_EN)
    write(tmp_path / "paws" / "de" / "test_2k.tsv", PAWS_DE)
    write(tmp_path / "lambada" / "lambada_test_en.jsonl", "".join(
        json.dumps({"text": t}) + "\n" for t in ["The cat sat on the mat", "He said it is"]))
    specs = (f"[{{name: mgsm, path: {tmp_path / 'mgsm'}}}, {{name: pawsx, path: "
             f"{tmp_path / 'paws'}}}, {{name: lambada, path: {tmp_path / 'lambada'}}}]")
    cfg = load_config(None, [f"workdir={tmp_path / 'run'}", f"evaluate.benchmarks={specs}",
                             "evaluate.concurrency=1", "evaluate.batch_size=4",
                             "evaluate.max_new_tokens=4", "model.max_len=64"])
    result = run_evaluate(cfg, {"a": str(a), "b": str(b)})
    sizes = {"mgsm": {"en": 3, "de": 3}, "pawsx": {"en": 3, "de": 3}, "lambada": {"en": 2}}
    for name, langs in sizes.items():
        out = cfg.paths.eval / name
        results = json.loads((out / "results.json").read_text())
        preds = pq.read_table(out / "predictions").to_pandas()
        assert len(preds) == sum(langs.values()) and preds["hit"].isna().all()
        assert results["meta"]["benchmark"] == name and results["meta"]["langs"] == list(langs)
        for m in ("a", "b"):
            for lang, n in langs.items():
                part = preds[preds["lang"] == lang]
                s = results["models"][m][lang]
                assert s["n"] == n and s["accuracy"] == pytest.approx(part[f"correct/{m}"].mean())
                assert s["gap"] == pytest.approx(results["models"][m]["en"]["accuracy"]
                                                 - s["accuracy"])
            for _, r in preds.iterrows():
                if name == "mgsm":
                    assert r[f"correct/{m}"] == get_benchmark("mgsm")(str(out)).correct(
                        r[f"prediction/{m}"], r["target"])
                elif name == "pawsx":
                    ll = list(r[f"logliks/{m}"])
                    assert r[f"prediction/{m}"] == r["choices"][ll.index(max(ll))]
                    assert r[f"correct/{m}"] == (r[f"prediction/{m}"] == r["target"])
        for lang in langs:
            part = preds[preds["lang"] == lang]
            d = results["paired"]["b - a"][lang]
            assert d["only_a"] == int((part["correct/a"] & ~part["correct/b"]).sum())
            assert d["only_b"] == int((part["correct/b"] & ~part["correct/a"]).sum())
    assert result.outputs["results"] == str(cfg.paths.eval / "mgsm" / "results.json")
