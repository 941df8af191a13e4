"""The FAQ chatbot. The matcher (a pure library: no database, no network) is here:

    from toolkit.chatbot import Entry, FaqIndex, calibrate
    index = FaqIndex.build([Entry("R10", "退貨要怎麼申請？", "七天鑑賞期 ...", "退換貨", ("我想退貨",))],
                           extra_terms=["晴川"])
    match = index.match("東西不喜歡可以退嗎")      # Match(entry_id, score, answered, candidates, features)
    decision = calibrate(index, examples)          # refit to a brand's labelled examples
    index = index.with_decision(decision)

Modules: bank (entries and loaders), analysis (normalising, jieba words, character
n-grams), retrieval (BM25 signals and their fusion), decision (answer or not: the
logistic model over scale-free features), matcher (the index), training (fitting the
shipped decision; calibrate).
"""

from toolkit.chatbot.bank import Entry, Example
from toolkit.chatbot.decision import Decision, Rates, load_decision
from toolkit.chatbot.matcher import FaqIndex, Match
from toolkit.chatbot.retrieval import RetrievalConfig
from toolkit.chatbot.training import calibrate, evaluate

__all__ = [
    "Decision",
    "Entry",
    "Example",
    "FaqIndex",
    "Match",
    "Rates",
    "RetrievalConfig",
    "calibrate",
    "evaluate",
    "load_decision",
]
