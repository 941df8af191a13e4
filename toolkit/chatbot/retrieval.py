"""Lexical retrieval over FAQ entries: BM25 on two term analyses, fused.

Each signal (jieba words, character 1-3-grams) scores every entry over two fields:

* the question field: the question and each alternative question as rows of their own,
  an entry scoring as its best row (a long list of alternatives does not dilute it);
* the answer field, weighted lower (it is long and says much besides the answer).

Scores are BM25 weights summed from posting lists held in CSR arrays (term -> rows),
accumulated with `numpy.bincount`, so a query costs a few array operations whatever the
bank's size. Every score is also given relative to the query's own best possible score
(each query term at BM25's saturation in both fields), which is scale-free: 1.0 means
"every term of the query, as strongly as BM25 allows", on a 3-entry bank or a
2,000-entry one. The two signals are fused on those relative scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toolkit.chatbot.analysis import Analyzer, expand


@dataclass(frozen=True)
class RetrievalConfig:
    """Retrieval knobs, fitted on the development query sets (see benchmarks/faq.py)."""

    k1: float = 1.2
    b: float = 0.75
    question_weight: float = 1.0
    answer_weight: float = 0.3
    word_weight: float = 0.3  # fused = word_weight * word_rel + (1 - word_weight) * char_rel
    char_n_max: int = 3
    expansion_weight: float = 0.5  # query terms added by synonyms.py, relative to the query's own


@dataclass
class Postings:
    """A term -> row sparse matrix in CSR arrays: the rows holding term t are
    rows[indptr[t]:indptr[t + 1]], with weights[...] beside them."""

    indptr: np.ndarray
    rows: np.ndarray
    weights: np.ndarray

    @classmethod
    def build(cls, n_terms: int, triples: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Postings:
        term, row, weight = triples
        order = np.lexsort((row, term))
        term, row, weight = term[order], row[order], weight[order]
        counts = np.bincount(term, minlength=n_terms)
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, row.astype(np.int32), weight.astype(np.float64))

    def gather(self, term_ids: np.ndarray, term_scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and weights of the postings of `term_ids`, each term's weights times its
        `term_scale` when given."""
        starts, ends = self.indptr[term_ids], self.indptr[term_ids + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.int32), np.empty(0)
        # Flat indices of every posting of every term, without a Python loop.
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        flat = np.arange(total) + offsets
        weights = self.weights[flat]
        if term_scale is not None:
            weights = weights * np.repeat(term_scale, lengths)
        return self.rows[flat], weights


def _codes(pairs: tuple[np.ndarray, np.ndarray], n_entries: int) -> np.ndarray:
    return pairs[0].astype(np.int64) * n_entries + pairs[1]


def _pairs(codes: np.ndarray, n_entries: int) -> tuple[np.ndarray, np.ndarray]:
    """(term, entry) pairs from their int64 codes term * n_entries + entry."""
    return codes // n_entries, codes % n_entries


def _idf(df: np.ndarray, n: int) -> np.ndarray:
    # BM25's idf with +1 inside the log (Lucene): never negative, even on a 3-entry bank.
    return np.log1p((n - df + 0.5) / (df + 0.5))


class Signal:
    """One term analysis (words or character n-grams) indexed over both fields."""

    def __init__(
        self,
        question_rows: Sequence[Sequence[str]],
        row_entry: np.ndarray,
        answers: Sequence[Sequence[str]],
        config: RetrievalConfig,
    ) -> None:
        n_entries = len(answers)
        self.n_entries = n_entries
        self.k1 = config.k1
        self.field_weights = (config.question_weight, config.answer_weight)
        vocab: dict[str, int] = {}
        for terms in (*question_rows, *answers):
            for term in terms:
                vocab.setdefault(term, len(vocab))
        self.vocab = vocab
        n_terms = len(vocab)

        q_triples, q_presence = self._bm25_triples(question_rows, row_entry, n_entries, n_terms, config)
        a_triples, a_presence = self._bm25_triples(answers, np.arange(n_entries), n_entries, n_terms, config)
        self.question = Postings.build(n_terms, q_triples)
        self.answer = Postings.build(n_terms, a_triples)
        self.row_entry = row_entry.astype(np.int32)
        self.n_rows = len(question_rows)
        # Entry starts of the question rows (rows are grouped by entry, in order).
        self.row_starts = np.flatnonzero(np.r_[True, row_entry[1:] != row_entry[:-1]])
        self.single_rows = self.n_rows == n_entries

        # Entry-level presence (is term t anywhere in entry e?), for query coverage.
        q_df = np.bincount(q_presence[0], minlength=n_terms)
        a_df = np.bincount(a_presence[0], minlength=n_terms)
        self.idf_question = _idf(q_df, n_entries)
        self.idf_answer = _idf(a_df, n_entries)
        self.idf_unseen = float(_idf(np.zeros(1), n_entries)[0])
        both = _pairs(np.union1d(_codes(q_presence, n_entries), _codes(a_presence, n_entries)), n_entries)
        any_df = np.bincount(both[0], minlength=n_terms)
        self.idf_any = _idf(any_df, n_entries)
        # Question rows -> their distinct terms, for the share of a question the query covers.
        q_term, q_row = q_triples[0], q_triples[1]
        by_row = np.lexsort((q_term, q_row))
        self.row_terms = q_term[by_row]
        self.row_indptr = np.zeros(self.n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(q_row, minlength=self.n_rows), out=self.row_indptr[1:])
        self.row_mass = np.bincount(q_row, self.idf_any[q_term], minlength=self.n_rows)
        self.in_question = Postings.build(n_terms, (q_presence[0], q_presence[1], np.ones(q_presence[0].size)))
        self.in_entry = Postings.build(n_terms, (both[0], both[1], np.ones(both[0].size)))

    def _bm25_triples(
        self,
        docs: Sequence[Sequence[str]],
        doc_entry: np.ndarray,
        n_entries: int,
        n_terms: int,
        config: RetrievalConfig,
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        vocab = self.vocab
        flat = np.fromiter((vocab[t] for d in docs for t in d), dtype=np.int64, count=int(lengths.sum()))
        doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        codes, tf = np.unique(doc_of * n_terms + flat, return_counts=True)
        row, term = codes // n_terms, codes % n_terms
        tf = tf.astype(np.float64)
        lengths = lengths.astype(np.float64)
        # Document frequency counts entries, not rows: alternatives of one entry count once.
        presence = _pairs(np.unique(term * n_entries + doc_entry[row]), n_entries)
        df = np.bincount(presence[0], minlength=n_terms)
        idf = _idf(df, n_entries)
        avg = lengths.mean() if lengths.size and lengths.mean() > 0 else 1.0
        norm = config.k1 * (1 - config.b + config.b * lengths[row] / avg)
        weight = idf[term] * tf * (config.k1 + 1) / (tf + norm)
        return (term, row, weight), (presence[0], presence[1])

    def term_ids(self, terms: Sequence[str]) -> tuple[np.ndarray, int]:
        """Ids of the distinct known terms, and how many distinct terms are unknown."""
        seen = dict.fromkeys(terms)
        ids = [self.vocab[t] for t in seen if t in self.vocab]
        return np.asarray(ids, dtype=np.int64), len(seen) - len(ids)

    def weighted_ids(self, terms: Sequence[str], extra: Sequence[str], extra_weight: float) -> tuple[np.ndarray, np.ndarray]:
        """Known term ids with query weights: 1 for the query's own terms, `extra_weight`
        for expansion terms the query does not already have."""
        weights: dict[int, float] = {}
        for term in extra:
            if term in self.vocab:
                weights[self.vocab[term]] = extra_weight
        for term in terms:
            if term in self.vocab:
                weights[self.vocab[term]] = 1.0
        return np.fromiter(weights, dtype=np.int64, count=len(weights)), np.fromiter(weights.values(), dtype=np.float64, count=len(weights))

    def score(self, ids: np.ndarray, query_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 of every entry (best question row x question weight + answer x answer
        weight), and of every question row; each query term's weights times its
        `query_weights` when given."""
        wq, wa = self.field_weights
        rows, weights = self.question.gather(ids, query_weights)
        row_scores = np.bincount(rows, weights, minlength=self.n_rows)
        q_scores = row_scores if self.single_rows else np.maximum.reduceat(row_scores, self.row_starts)
        rows, weights = self.answer.gather(ids, query_weights)
        a_scores = np.bincount(rows, weights, minlength=self.n_entries)
        return wq * q_scores + wa * a_scores, row_scores

    def question_coverage(self, ids: np.ndarray, entry: int, row_scores: np.ndarray) -> float:
        """The idf-weighted share of the entry's best-matching question (or alternative
        question) that the query's terms cover: low when the query hits a question's
        topic but not what it asks."""
        start = self.row_starts[entry]
        end = self.row_starts[entry + 1] if entry + 1 < len(self.row_starts) else self.n_rows
        row = start + int(np.argmax(row_scores[start:end]))
        terms = self.row_terms[self.row_indptr[row] : self.row_indptr[row + 1]]
        mass = self.row_mass[row]
        if mass <= 0:
            return 0.0
        return float(self.idf_any[terms[np.isin(terms, ids)]].sum() / mass)

    def best_possible(self, ids: np.ndarray, n_unknown: int, query_weights: np.ndarray | None = None) -> float:
        """The score of an entry holding every query term at BM25's saturation in both
        fields; unknown terms count at the idf of a term no entry has."""
        wq, wa = self.field_weights
        per_term = wq * self.idf_question[ids] + wa * self.idf_answer[ids]
        known = float(per_term @ query_weights if query_weights is not None else per_term.sum())
        return (self.k1 + 1) * (known + n_unknown * (wq + wa) * self.idf_unseen)

    def coverage(self, ids: np.ndarray, n_unknown: int, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of `entries`: the idf-weighted share of the query's terms found in its
        question rows, and anywhere in the entry."""
        idf = self.idf_any[ids]
        total = float(idf.sum()) + n_unknown * self.idf_unseen
        if total <= 0:
            return np.zeros(len(entries)), np.zeros(len(entries))
        out = []
        for postings in (self.in_question, self.in_entry):
            rows, weights = postings.gather(ids, idf)
            mass = np.bincount(rows, weights, minlength=self.n_entries)
            out.append(mass[entries] / total)
        return out[0], out[1]


@dataclass
class Retrieval:
    """What one query retrieved: entry indices best first, and per-signal evidence."""

    order: np.ndarray  # entry indices by fused score, best first (top k)
    fused: np.ndarray  # fused scores of `order`
    word_rel: np.ndarray  # word BM25 / best possible, for `order`
    char_rel: np.ndarray
    word_top: int  # best entry by words alone (-1 when no word matched)
    char_top: int
    word_cov_q: np.ndarray  # coverage of `order`, see Signal.coverage
    word_cov: np.ndarray
    char_cov_q: np.ndarray
    char_cov: np.ndarray
    word_question_cov: float  # share of the best entry's best question the query covers
    char_question_cov: float
    word_unknown: float  # share of the query's distinct words the bank never uses
    char_unknown: float
    n_words: int
    n_chars: int


class Retriever:
    def __init__(self, question_rows_text: Sequence[str], row_entry: np.ndarray, answers_text: Sequence[str],
                 analyzer: Analyzer, config: RetrievalConfig) -> None:
        self.analyzer = analyzer
        self.config = config
        self.n_entries = len(answers_text)
        words = analyzer.words
        chars = lambda s: analyzer.char_ngrams(s, config.char_n_max)  # noqa: E731
        self.words = Signal([words(t) for t in question_rows_text], row_entry, [words(t) for t in answers_text], config)
        self.chars = Signal([chars(t) for t in question_rows_text], row_entry, [chars(t) for t in answers_text], config)

    def retrieve(self, prepared: str, k: int = 5) -> Retrieval:
        word_terms = self.analyzer.words(prepared)
        char_terms = self.analyzer.char_ngrams(prepared, self.config.char_n_max)
        w_ids, w_unknown = self.words.term_ids(word_terms)
        c_ids, c_unknown = self.chars.term_ids(char_terms)
        # Retrieval also searches the formal words for the everyday ones (synonyms.py), at
        # a lower weight; coverage and the other decision features use the query's own.
        expansion = expand(prepared)
        w_qids, w_qw = self.words.weighted_ids(
            word_terms, self.analyzer.words(expansion) if expansion else [], self.config.expansion_weight
        )
        c_qids, c_qw = self.chars.weighted_ids(
            char_terms, [g for w in expansion.split() for g in self.analyzer.char_ngrams(w, self.config.char_n_max)],
            self.config.expansion_weight,
        )
        w_scores, w_rows = self.words.score(w_qids, w_qw)
        c_scores, c_rows = self.chars.score(c_qids, c_qw)
        w_best = self.words.best_possible(w_qids, w_unknown, w_qw)
        c_best = self.chars.best_possible(c_qids, c_unknown, c_qw)
        w_rel = w_scores / w_best if w_best > 0 else np.zeros(self.n_entries)
        c_rel = c_scores / c_best if c_best > 0 else np.zeros(self.n_entries)
        alpha = self.config.word_weight
        fused = alpha * w_rel + (1 - alpha) * c_rel
        k = min(k, self.n_entries)
        if k < self.n_entries:
            top = np.argpartition(-fused, k - 1)[:k]
        else:
            top = np.arange(self.n_entries)
        # Best first; ties broken by entry order.
        top = top[np.lexsort((top, -fused[top]))]
        wq, wa = self.words.coverage(w_ids, w_unknown, top)
        cq, ca = self.chars.coverage(c_ids, c_unknown, top)
        first = int(top[0])
        w_qcov = self.words.question_coverage(w_ids, first, w_rows)
        c_qcov = self.chars.question_coverage(c_ids, first, c_rows)
        n_words = len(w_ids) + w_unknown
        n_chars = len(c_ids) + c_unknown
        return Retrieval(
            order=top,
            fused=fused[top],
            word_rel=w_rel[top],
            char_rel=c_rel[top],
            word_top=int(np.argmax(w_scores)) if w_scores.max(initial=0) > 0 else -1,
            char_top=int(np.argmax(c_scores)) if c_scores.max(initial=0) > 0 else -1,
            word_cov_q=wq,
            word_cov=wa,
            char_cov_q=cq,
            char_cov=ca,
            word_question_cov=w_qcov,
            char_question_cov=c_qcov,
            word_unknown=w_unknown / n_words if n_words else 1.0,
            char_unknown=c_unknown / n_chars if n_chars else 1.0,
            n_words=n_words,
            n_chars=n_chars,
        )
