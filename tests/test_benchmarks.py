"""Benchmark adapters on small files in each benchmark's published format (read on a real
local Ray), and the evaluate stage running them on tiny random Llamas."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_align.config import ModelConfig
from ray_align.eval.benchmarks import BENCHMARKS, get_benchmark
from ray_align.eval.benchmarks.base import ROW
from ray_align.model import build_model, save
from tests.test_loglik import tiny  # noqa: F401, F811  (a module fixture)

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


# -- the evaluate stage on them ------------------------------------------------------------

@pytest.mark.slow
def test_evaluate_runs_each_kind_of_benchmark_for_two_models(ray_local, tiny, tmp_path):  # noqa: F811
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
