"""The unanswered queue: grouping similar questions, and turning a group into an entry or
alternative questions that the bot then answers."""

from __future__ import annotations

import pytest

from tests.chatbot.factories import make_retail_bank
from tests.contacts.factories import make_contact
from toolkit.chatbot import service, unanswered
from toolkit.chatbot.unanswered import DISMISSED, OPEN, RESOLVED
from toolkit.kit.errors import Conflict

PARAPHRASES = ["你們門市幾點開", "門市幾點開門？", "門市營業到幾點"]
OTHERS = ["禮物可以包裝嗎", "有沒有賣貓飼料", "可以用信用卡分期嗎"]


def queue(session, *texts, contact=None):
    contact = contact or make_contact(session)
    return [unanswered.record(session, text=t, contact_id=contact.id, message_id=None, best_entry_key="points",
                              score=0.2) for t in texts]


def group_of(groups, text):
    (group,) = [g for g in groups if any(q.text == text for q in g.questions)]
    return group


def test_paraphrases_are_grouped_and_different_questions_kept_apart():
    texts = [*PARAPHRASES, *OTHERS, "可以幫忙包裝成禮物嗎", "貓糧有賣嗎", "信用卡分期付款可以嗎？", "客服電話幾號"]

    groups = unanswered.cluster(texts)

    assert groups == [[0, 1, 2], [3, 6], [4, 7], [5, 8], [9]]


def test_groups_of_the_open_questions_biggest_first(session):
    before = unanswered.open_count(session)
    queue(session, *PARAPHRASES, *OTHERS)
    dismissed = queue(session, "今天天氣如何")
    unanswered.dismiss(session, question_ids=[q.id for q in dismissed], actor="staff")

    groups = unanswered.groups(session, limit=500)

    assert unanswered.open_count(session) == before + 6
    cards = group_of(groups, PARAPHRASES[0])
    assert sorted(q.text for q in cards.questions) == sorted(PARAPHRASES) and cards.count == 3
    assert cards.representative in PARAPHRASES and cards.best_entry_key == "points"
    assert cards.latest_at == max(q.created_at for q in cards.questions)
    assert group_of(groups, OTHERS[0]).count == 1
    assert not any(q.text == "今天天氣如何" for g in groups for q in g.questions)
    assert groups.index(cards) < groups.index(group_of(groups, OTHERS[0]))


def test_resolving_a_group_as_a_new_entry_makes_the_bot_answer_it(session):
    make_retail_bank(session)
    questions = queue(session, *PARAPHRASES)
    assert not service.match(session, "門市幾點開門？").answered

    entry = unanswered.resolve_as_new_entry(
        session, question_ids=[q.id for q in questions], key="hours", question="門市營業時間？",
        answer="門市每天 11:00–21:30 營業。", category="門市", actor="staff@example.com",
    )

    assert entry.version == 1 and set(PARAPHRASES) <= set(entry.alt_questions)
    assert all(q.status == RESOLVED and q.resolved_entry_key == "hours" for q in questions)
    assert all(q.resolved_by == "staff@example.com" and q.resolved_at for q in questions)
    match = service.match(session, "門市幾點開門？")
    assert match.answered and match.entry_id == "hours"


def test_resolving_as_alternative_questions_of_an_existing_entry(session):
    make_retail_bank(session)
    questions = queue(session, "點數到底要怎麼折", "點數怎麼折抵")

    entry = unanswered.resolve_as_alt_question(session, question_ids=[q.id for q in questions],
                                               entry_key="points", actor="staff")

    assert entry.version == 2 and {"點數到底要怎麼折", "點數怎麼折抵"} <= set(entry.alt_questions)
    assert all(q.status == RESOLVED and q.resolved_entry_key == "points" for q in questions)
    assert service.match(session, "點數到底要怎麼折").entry_id == "points"


def test_a_customer_s_phone_number_or_e_mail_never_becomes_part_of_the_bank(session):
    make_retail_bank(session)
    questions = queue(session, "點數怎麼折 我電話0912-345-678", "點數折抵 amy@example.com")

    entry = unanswered.resolve_as_alt_question(session, question_ids=[q.id for q in questions],
                                               entry_key="points", actor="staff")

    assert {"點數怎麼折 我電話", "點數折抵"} <= set(entry.alt_questions)
    assert not any("0912" in q or "amy@" in q for q in entry.alt_questions)


def test_a_resolved_question_cannot_be_resolved_again_and_a_key_is_not_overwritten(session):
    make_retail_bank(session)
    (question,) = queue(session, "可以寄到國外嗎")
    with pytest.raises(Conflict):
        unanswered.resolve_as_new_entry(session, question_ids=[question.id], key="points", question="寄國外？",
                                        answer="目前只寄台灣。", category="配送", actor="staff")
    assert question.status == OPEN

    unanswered.dismiss(session, question_ids=[question.id], actor="staff")
    assert question.status == DISMISSED
    with pytest.raises(Conflict):
        unanswered.resolve_as_alt_question(session, question_ids=[question.id], entry_key="ship-fee", actor="staff")
    assert unanswered.dismiss(session, question_ids=[question.id], actor="staff") == 0
