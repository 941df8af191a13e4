"""Turning FAQ text and customer messages into the terms the matcher counts.

Two analyses of the same normalised text:

* words: jieba segmentation. jieba's dictionary is Simplified Chinese, so the normalised
  (Traditional, Taiwan) text is segmented in its Simplified form; the terms are only
  compared with each other, never shown. Each bank adds its own terms (names in 「」,
  frequent phrases of its questions) and the brand's terms to a private copy of the
  dictionary, so two banks never change each other's segmentation.
* characters: 1- to 3-grams inside each space-free run, which survive typos and
  segmentation mistakes.

jieba's dictionary (about 500,000 words) is parsed once per process, without its
disk cache and without its log lines.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import jieba
import opencc

from toolkit.kit.text import normalise

# 注音文: a Bopomofo letter typed for a whole syllable, mostly sentence-final particles
# (「可以ㄇ」「好ㄉ」「走ㄌ」). Replaced by the character it stands for before anything else.
ZHUYIN = {
    "ㄇ": "嗎", "ㄉ": "的", "ㄌ": "了", "ㄚ": "啊", "ㄋ": "呢", "ㄅ": "吧", "ㄛ": "喔",
    "ㄜ": "呃", "ㄏ": "呵", "ㄖ": "日", "ㄙ": "絲", "ㄍ": "個", "ㄊ": "他", "ㄐ": "機",
    "ㄓ": "知", "ㄗ": "在", "ㄘ": "次", "ㄞ": "唉", "ㄟ": "欸", "ㄡ": "歐", "ㄢ": "安",
}
_ZHUYIN_TABLE = str.maketrans(ZHUYIN)

# Particles and pronouns that say nothing about which answer is wanted (Simplified,
# as the word analysis sees them). Question words (哪里, 多少, 如何 ...) are kept: they
# tell "where" from "how much".
STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 喔 哦 嘛 啦 耶 欸 唉 呃 呵 哈 嗯 之 着 过 地 得 "
    "我 你 您 他 她 它 我们 你们 他们 咱们 自己 请问 请 问 一下 想 想要 那个 这个 这样 那样 "
    "就 都 也 还 又 很 蛮 超 好 是 在 和 跟 与 及 或 而 但 所以 因为 如果 然后 这 那 个 些 "
    "一个 有没有 是不是 会不会 能不能 可不可以 到底 其实 真的 应该 已经 现在 时候 请教".split()
)

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_QUOTED = re.compile(r"[「『《〈“\"]([^」』》〉”\"]{2,16})[」』》〉”\"]")
# Phrases mined from questions must not start or end on these (they glue onto words).
_EDGE_CHARS = frozenset("的之及與和或是有為在於如何嗎呢了請問者等")

_base_lock = threading.Lock()


@lru_cache(maxsize=1)
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def prepare(text: str) -> str:
    """The shared first step: NFKC, Traditional (Taiwan), lower case, no punctuation or
    emoji (toolkit.kit.text.normalise), then 注音文 letters read as characters."""
    return normalise(text).translate(_ZHUYIN_TABLE)


@lru_cache(maxsize=1)
def _base_dictionary() -> tuple[dict[str, int], int]:
    """jieba's default dictionary, parsed once per process. Parsed directly rather than
    through `Tokenizer.initialize`, which logs to stderr and keeps a pickle-like cache in
    the shared temporary directory."""
    with _base_lock:
        tokenizer = jieba.Tokenizer()
        with tokenizer.get_dict_file() as handle:
            freq, total = tokenizer.gen_pfdict(handle)
    return freq, total


def _new_tokenizer(words: Iterable[str]) -> jieba.Tokenizer:
    """A jieba tokenizer with a private copy of the base dictionary plus `words`."""
    freq, total = _base_dictionary()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ = dict(freq)
    tokenizer.total = total
    tokenizer.initialized = True
    for word in sorted(set(words)):
        if len(word) < 2:
            continue
        current = tokenizer.FREQ.get(word, 0)
        # suggest_freq: the frequency that makes jieba keep the word whole.
        tokenizer.add_word(word, max(current, tokenizer.suggest_freq(word, tune=False), 5))
    return tokenizer


class Analyzer:
    """Word and character-n-gram terms of a text, with a bank's own vocabulary."""

    def __init__(self, extra_terms: Iterable[str] = ()) -> None:
        simplified = _to_simplified()
        self.terms = tuple(sorted({t for t in (simplified.convert(prepare(x)).replace(" ", "") for x in extra_terms) if t}))
        self._tokenizer = _new_tokenizer(self.terms)

    def words(self, prepared: str) -> list[str]:
        """Word terms of already prepared text, stopwords dropped."""
        simplified = _to_simplified().convert(prepared)
        out = []
        for token in self._tokenizer.cut(simplified, HMM=True):
            token = token.strip()
            if token and token not in STOPWORDS:
                out.append(token)
        return out

    @staticmethod
    def char_ngrams(prepared: str, n_max: int = 3) -> list[str]:
        """Character 1..n_max-grams inside each space-separated run of prepared text.
        Runs of Latin letters or digits count as one character each, so that "wifi"
        or "2017" is one unit rather than four."""
        out: list[str] = []
        for run in prepared.split():
            units = _units(run)
            for n in range(1, n_max + 1):
                for i in range(len(units) - n + 1):
                    out.append("".join(units[i : i + n]))
        return out


_UNIT = re.compile(r"[a-z0-9]+|.", re.S)


def _units(run: str) -> list[str]:
    return _UNIT.findall(run)


def bank_terms(questions: Iterable[str], *, min_docs: int = 3, max_terms: int = 3000) -> list[str]:
    """A bank's own vocabulary, for jieba: names quoted in its questions (「鬧熱關渡節」)
    and 2-6 character phrases that recur in at least `min_docs` questions and are not
    already jieba words (社區規劃師, 人車共道). A phrase is kept only when it is not a
    piece of a longer phrase that recurs as often."""
    freq, _ = _base_dictionary()
    simplified = _to_simplified()
    quoted: set[str] = set()
    doc_count: Counter[str] = Counter()
    for question in questions:
        for name in _QUOTED.findall(question):
            name = simplified.convert(prepare(name)).replace(" ", "")
            if 2 <= len(name) <= 12 and _CJK.search(name):
                quoted.add(name)
        text = simplified.convert(prepare(question))
        grams: set[str] = set()
        for run in text.split():
            for n in range(2, 7):
                for i in range(len(run) - n + 1):
                    gram = run[i : i + n]
                    if gram[0] in _EDGE_CHARS or gram[-1] in _EDGE_CHARS or not _CJK.fullmatch(gram[0]):
                        continue
                    if all(_CJK.fullmatch(c) for c in gram):
                        grams.add(gram)
        doc_count.update(grams)
    frequent = {g: c for g, c in doc_count.items() if c >= min_docs and not freq.get(g)}
    # Drop a phrase when a phrase one character longer that contains it recurs in as
    # many questions (containment is transitive, so one character longer is enough).
    longest_extension: dict[str, int] = {}
    for gram, count in frequent.items():
        for part in (gram[:-1], gram[1:]):
            longest_extension[part] = max(longest_extension.get(part, 0), count)
    kept = sorted(
        ((count, gram) for gram, count in frequent.items() if longest_extension.get(gram, 0) < count),
        key=lambda cg: (-cg[0], cg[1]),
    )
    return sorted(quoted | {g for _, g in kept[:max_terms]})
