"""Answer-language judges: py3langid for any data, the CLDR names for the demo world."""

import pytest

from ray_align.eval.fidelity import NONE, OTHER, SAME, get_judge

LANGS = ("en", "de", "es", "fr", "ja", "hi", "sw", "th", "vi", "hu", "ro")


@pytest.mark.parametrize(("text", "lang"), [
    ("สกุลเงินทางการของประเทศไทยคือเงินบาท", "th"),
    ("Đơn vị tiền tệ chính thức của Việt Nam là đồng", "vi"),
    ("भारत की आधिकारिक मुद्रा भारतीय रुपया है", "hi"),
    ("日本の公式通貨は日本円です", "ja"),
    ("Sarafu rasmi ya Kenya ni shilingi ya Kenya", "sw"),
    ("Die offizielle Währung von Deutschland ist der Euro", "de"),
])
def test_langid_detects_the_question_languages(text, lang):
    judge = get_judge("langid", LANGS)
    assert judge(text, lang) == SAME
    assert judge(text, "en") == OTHER
    assert judge("   ", lang) == NONE


def test_cldr_names_judge_short_answers_exactly():
    judge = get_judge("cldr", LANGS)
    assert judge("Japanischer Yen", "de") == SAME
    assert judge("Yên Nhật", "vi") == SAME
    assert judge("japanese yen", "en") == SAME  # normalised: case and punctuation
    assert judge("Europa", "th") == OTHER  # a region named in another language
    assert judge("Englisch", "vi") == OTHER
    assert judge("Euro", "de") == SAME  # a name two languages share counts for both
    assert judge("Shakespeare", "en") == NONE  # not an answer of the world
