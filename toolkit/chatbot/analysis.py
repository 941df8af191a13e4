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

from toolkit.chatbot.synonyms import EXPANSIONS
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
    "一个 有没有 是不是 会不会 能不能 可不可以 到底 其实 真的 应该 已经 现在 时候 请教 "
    "可以 可 能 能够 会 要 需要 得要".split()
)

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]{2,}")
_QUOTED = re.compile(r"[「『《〈“\"]([^」』》〉”\"]{2,16})[」』》〉”\"]")
# Phrases mined from questions must not start or end on these (they glue onto words);
# Simplified, as the phrases are.
_EDGE_CHARS = frozenset("的之及与和或是有为在于如何吗呢了请问者等")

_base_lock = threading.Lock()


@lru_cache(maxsize=1)
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def prepare(text: str) -> str:
    """The shared first step: NFKC, Traditional (Taiwan), lower case, no punctuation or
    emoji (toolkit.kit.text.normalise), then 注音文 letters read as characters."""
    return normalise(text).translate(_ZHUYIN_TABLE)


_LATIN_KEYS = re.compile(
    "|".join(rf"(?<![a-z0-9]){re.escape(k)}(?![a-z0-9])" for k in sorted(EXPANSIONS, key=len, reverse=True) if k.isascii())
)
_CJK_KEYS = tuple(k for k in EXPANSIONS if not k.isascii())


def expand(prepared: str) -> str:
    """The formal words for the everyday ones in prepared text (see synonyms.py), as
    one space-separated string ('' when none)."""
    found = [k for k in _CJK_KEYS if k in prepared] + _LATIN_KEYS.findall(prepared)
    words = dict.fromkeys(w for k in found for w in EXPANSIONS[k].split())
    return " ".join(w for w in words if w not in prepared)


_base: tuple[dict[str, int], int] | None = None


def _base_dictionary() -> tuple[dict[str, int], int]:
    """jieba's default dictionary, parsed once per process (the first caller parses it,
    concurrent callers wait). Parsed directly rather than through
    `Tokenizer.initialize`, which logs to stderr and keeps a marshal cache in the shared
    temporary directory. Never modified: each Analyzer works on its own copy."""
    global _base
    with _base_lock:
        if _base is None:
            tokenizer = jieba.Tokenizer()
            with tokenizer.get_dict_file() as handle:
                _base = tokenizer.gen_pfdict(handle)
        return _base


def _new_tokenizer(words: Iterable[str]) -> jieba.Tokenizer:
    """A jieba tokenizer on the base dictionary plus `words`: a private copy of the
    dictionary (about 15 MB) when there are words to add, the shared one otherwise."""
    freq, total = _base_dictionary()
    words = sorted({w for w in words if len(w) >= 2})
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ = dict(freq) if words else freq
    tokenizer.total = total
    tokenizer.initialized = True
    for word in words:
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
        """Word terms of already prepared text, stopwords dropped. jieba's search mode
        also yields the dictionary words inside a long word (社區規劃師 -> 社區, 規劃,
        規劃師, 社區規劃師), so a bank phrase never hides its parts. Without jieba's HMM:
        unknown runs fall apart into characters (which the character signal covers anyway)
        rather than into guessed words, and segmentation is five times faster."""
        simplified = _to_simplified().convert(prepared)
        out = []
        for token in self._tokenizer.cut_for_search(simplified, HMM=False):
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
            if _ALNUM.search(run):
                units = _UNIT.findall(run)
                for n in range(1, n_max + 1):
                    out.extend("".join(units[i : i + n]) for i in range(len(units) - n + 1))
            else:
                for n in range(1, n_max + 1):
                    out.extend(run[i : i + n] for i in range(len(run) - n + 1))
        return out


_ALNUM = re.compile(r"[a-z0-9]")
_UNIT = re.compile(r"[a-z0-9]+|.", re.S)


def bank_terms(questions: Iterable[str], *, min_docs: int = 4, max_terms: int = 2000) -> list[str]:
    """A bank's own vocabulary, for jieba: names quoted in its questions (「鬧熱關渡節」)
    and phrases of two or three adjacent dictionary words that recur in at least
    `min_docs` questions (社區 + 規劃師, 人車 + 共道). Phrases are built from whole words,
    never from arbitrary character runs, so they cannot glue the end of one word to the
    start of the next."""
    simplified = _to_simplified()
    base = _new_tokenizer(())
    quoted: set[str] = set()
    doc_count: Counter[str] = Counter()
    for question in questions:
        for name in _QUOTED.findall(question):
            name = simplified.convert(prepare(name)).replace(" ", "")
            if 2 <= len(name) <= 12 and _CJK.search(name):
                quoted.add(name)
        phrases: set[str] = set()
        for run in _CJK_RUN.findall(simplified.convert(prepare(question))):
            words = base.lcut(run, HMM=False)
            for n in (2, 3):
                for i in range(len(words) - n + 1):
                    parts = words[i : i + n]
                    if any(p in STOPWORDS or p[0] in _EDGE_CHARS or p[-1] in _EDGE_CHARS for p in parts):
                        continue
                    phrase = "".join(parts)
                    if 3 <= len(phrase) <= 8:
                        phrases.add(phrase)
        doc_count.update(phrases)
    frequent = sorted(((c, g) for g, c in doc_count.items() if c >= min_docs), key=lambda cg: (-cg[0], cg[1]))
    return sorted(quoted | {g for _, g in frequent[:max_terms]})
