from ray_align.data.quality import check_variant, script_share


def test_script_share():
    assert script_share("日本の通貨は何ですか", "ja") == 1.0
    assert script_share("What is this", "ja") == 0.0
    assert script_share("जापान की मुद्रा", "hi") == 1.0
    assert script_share("Quelle est la monnaie ?", "fr") == 1.0
    assert script_share("1234 ?!", "th") == 1.0  # no letters: nothing to judge


def test_check_variant_reasons():
    anchor = "What is the currency of Japan?"
    assert check_variant("ja", "日本の通貨は何ですか？", "日本円", anchor, 0.5)[1] is None
    assert check_variant("ja", None, "日本円", anchor, 0.5)[1] == "untranslatable"
    assert check_variant("de", " ", "Yen", anchor, 0.5)[1] == "empty translation"
    assert check_variant("de", anchor, "Yen", anchor, 0.5)[1].startswith("unchanged copy")
    quality, reason = check_variant("hi", "What is the currency of जापान?", "Yen", anchor, 0.5)
    assert reason.startswith("wrong script") and quality < 0.5
