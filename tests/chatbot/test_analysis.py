from __future__ import annotations

import pytest

from toolkit.chatbot.analysis import Analyzer, bank_terms, prepare


@pytest.mark.parametrize(
    ("text", "prepared"),
    [
        ("身心障碍者买房贷款", "身心障礙者買房貸款"),  # Simplified -> Traditional
        ("软件 网络", "軟體 網路"),  # with Taiwan's phrasing
        ("ＡＰＰ　閃退！！", "app 閃退"),  # full-width forms and punctuation
        ("WiFi 怎麼連📶？", "wifi 怎麼連"),  # case and emoji
        ("可以ㄇ 好ㄉ 走ㄌ", "可以嗎 好的 走了"),  # 注音文
        ("😂😂😂", ""),
    ],
)
def test_prepare(text: str, prepared: str) -> None:
    assert prepare(text) == prepared


def test_words_drop_particles_and_keep_content() -> None:
    words = Analyzer().words(prepare("請問身心障礙者的購屋貸款利息補貼要準備什麼資料嗎"))
    assert "的" not in words and "吗" not in words
    assert {"贷款", "利息", "补贴"} <= set(words)


def test_bank_terms_join_recurring_words_and_quoted_names() -> None:
    questions = [f"社區規劃師工作室{i}在哪裡" for i in range(5)] + ["「鬧熱關渡節」主辦單位？"]
    terms = bank_terms(questions)
    assert "闹热关渡节" in terms  # quoted name, as jieba sees it (Simplified)
    assert any("规划师" in t and len(t) > 3 for t in terms)


def test_brand_terms_stay_in_their_own_analyzer() -> None:
    plain = Analyzer()
    branded = Analyzer(["晴川生活"])
    text = prepare("晴川生活的會員")
    assert "晴川生活" not in plain.words(text)
    assert "晴川生活" in branded.words(text)
    assert plain.words(text) == Analyzer().words(text)  # the brand's words did not leak


def test_char_ngrams_treat_latin_runs_as_units() -> None:
    grams = Analyzer.char_ngrams("wifi密碼")
    assert "wifi" in grams and "wifi密" in grams and "密碼" in grams and "w" not in grams
