"""The bot on LINE, driven through the real inbox: events stored as the webhook stores
them, handled by the worker's loop, answers sent to the LINE sandbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select

from tests.auth.factories import make_user
from tests.chatbot.factories import RETAIL, make_entry, make_retail_bank
from tests.inbox.conftest import line_sandbox, sandbox_server  # noqa: F401 - fixtures
from tests.inbox.factories import arrive, event, line_user_id, store
from toolkit.chatbot import agent_replies, bot, conversations, handoff, unanswered
from toolkit.chatbot.config import load_bot_config
from toolkit.chatbot.conversations import BOT, HUMAN, WAITING
from toolkit.chatbot.deps import deliver
from toolkit.chatbot.models import ChatMessage, UnansweredQuestion
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.inbox import handlers, jobs
from toolkit.messaging.channel import line_client
from toolkit.kit.errors import ConsentDenied
from toolkit.line import client as line

TAIPEI = ZoneInfo("Asia/Taipei")
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=TAIPEI)  # open (Mon-Fri 09:00-18:00)
SATURDAY_10 = datetime(2026, 3, 7, 10, 0, tzinfo=TAIPEI)  # closed until Monday 9 March 09:00
CONFIG = load_bot_config()
ANSWERS = {row["key"]: row["answer"] for row in RETAIL}
NOT_SURE = CONFIG.texts.not_sure.zh_tw
OPEN = CONFIG.texts.handoff_open.zh_tw


@pytest.fixture
def install_bot():
    """Install the bot (at a fixed time, Wednesday 10:00 in Taipei, unless told), and
    put the inbox's previous text handler back afterwards."""
    undo = []

    def install(at: datetime = WEDNESDAY_10, **kwargs) -> None:
        undo.append(bot.install(clock=lambda: at, **kwargs))

    install()
    yield install
    while undo:
        undo.pop()()


@pytest.fixture
def chat(session, line_sandbox, install_bot):  # noqa: F811 - fixture
    """chat(user, text) -> the texts LINE got for that user because of this message."""

    def say(user: str, text: str) -> list[dict]:
        before = len(line_sandbox.messages())
        (row,) = store(session, event("message", user, text=text))
        line_sandbox.register_reply_token(row.reply_token, user)
        while jobs.process_events():
            pass
        session.expire_all()
        return [m for m in line_sandbox.messages()[before:] if user in m["to"] and m["accepted"]]

    return say


def texts(sent: list[dict]) -> list[str]:
    return [message["text"] for delivery in sent for message in delivery["messages"]]


def conversation_of(session, user):
    contact = contacts.require_by_external_id(session, user)
    return conversations.conversation_for(session, contact_id=contact.id)


def bot_messages(session, user):
    conversation = conversation_of(session, user)
    return [m for m in conversations.messages(session, conversation_id=conversation.id) if m.sender == "bot"]


def test_a_faq_question_is_answered_verbatim_in_one_reply(session, chat):
    make_retail_bank(session)
    user = line_user_id()

    (reply,) = chat(user, "運費多少？")

    assert reply["endpoint"] == "reply"
    (message,) = reply["messages"]
    assert message["text"] == ANSWERS["ship-fee"]
    assert [i["action"]["text"] for i in message["quickReply"]["items"]] == ["真人客服"]
    (answer,) = bot_messages(session, user)
    assert answer.entry_key == "ship-fee" and answer.answered is True and 0 < answer.score <= 1
    conversation = conversation_of(session, user)
    assert conversation.status == BOT and conversation.misses == 0
    inbound = [m for m in conversations.messages(session, conversation_id=conversation.id) if m.sender == "customer"]
    assert inbound[0].text == "運費多少？" and inbound[0].webhook_event_id is not None


def test_a_long_answer_goes_out_as_several_messages_of_one_reply(session, chat):
    paragraphs = ["退貨流程說明" * 700, "退款時程說明" * 700]
    make_entry(session, key="long", question="退貨流程和退款時程", answer="\n".join(paragraphs))
    user = line_user_id()

    (reply,) = chat(user, "退貨流程和退款時程")

    assert [m["text"] for m in reply["messages"]] == paragraphs
    assert "quickReply" in reply["messages"][-1] and "quickReply" not in reply["messages"][0]


def test_a_match_on_an_entry_without_an_answer_offers_a_person(session, chat):
    make_entry(session, key="blank", question="停車場在哪裡", answer="")
    user = line_user_id()

    (reply,) = chat(user, "停車場在哪裡")

    assert [m["text"] for m in reply["messages"]] == [NOT_SURE]


def test_an_unsure_answer_offers_a_person_and_queues_the_question(session, chat):
    make_retail_bank(session)
    user = line_user_id()

    (reply,) = chat(user, "你們門市幾點開")

    (message,) = reply["messages"]
    assert message["text"] == NOT_SURE
    assert message["quickReply"]["items"][0]["action"] == {"type": "message", "label": "真人客服", "text": "真人客服"}
    conversation = conversation_of(session, user)
    assert conversation.misses == 1 and conversation.status == BOT
    question = session.scalar(select(UnansweredQuestion).where(UnansweredQuestion.text == "你們門市幾點開"))
    assert question.status == "open" and question.contact_id == conversation.contact_id
    assert session.get(ChatMessage, question.message_id).sender == "customer"
    assert bot_messages(session, user)[0].answered is False


@pytest.mark.parametrize("text", ["真人客服", "我要找真人", "可以幫我轉客服嗎？", "Talk to a person", "我要投訴"])
def test_asking_for_a_person_hands_off_with_one_message(session, chat, text):
    make_retail_bank(session)
    user = line_user_id()

    (reply,) = chat(user, text)

    assert texts([reply]) == [OPEN]
    conversation = conversation_of(session, user)
    assert conversation.status == WAITING and conversation.handoff_reason == "keyword"
    assert conversation.handoff_at is not None


@pytest.mark.parametrize("text", ["客服電話幾號", "請問客服幾點上班"])
def test_a_question_about_customer_service_is_not_a_handoff(session, chat, text):
    make_retail_bank(session)
    user = line_user_id()

    chat(user, text)

    assert conversation_of(session, user).status == BOT


def test_a_complaint_goes_to_people_with_an_apology(session, chat):
    make_retail_bank(session)
    user = line_user_id()

    (reply,) = chat(user, "等了兩個禮拜還沒到，很扯！！！")

    assert texts([reply]) == [CONFIG.texts.lead_complaint.zh_tw + OPEN]
    assert conversation_of(session, user).handoff_reason == "complaint"


def test_repeated_unsure_answers_hand_off(session, chat):
    make_retail_bank(session)
    user = line_user_id()

    assert texts(chat(user, "你們門市幾點開")) == [NOT_SURE]
    assert texts(chat(user, "有沒有賣貓飼料")) == [CONFIG.texts.lead_unsure.zh_tw + OPEN]

    conversation = conversation_of(session, user)
    assert conversation.status == WAITING and conversation.handoff_reason == "unsure" and conversation.misses == 2
    queued = {q.text for q in session.scalars(select(UnansweredQuestion)
                                              .where(UnansweredQuestion.contact_id == conversation.contact_id))}
    assert queued == {"你們門市幾點開", "有沒有賣貓飼料"}


def test_an_answer_in_between_resets_the_misses(session, chat):
    make_retail_bank(session)
    user = line_user_id()

    chat(user, "你們門市幾點開")
    chat(user, "運費多少")
    assert texts(chat(user, "有沒有賣貓飼料")) == [NOT_SURE]
    assert conversation_of(session, user).status == BOT


def test_the_bot_is_silent_while_people_own_the_conversation_and_answers_after_release(session, chat):
    make_retail_bank(session)
    agent = make_user(session, roles=["agent"])
    user = line_user_id()
    chat(user, "真人")
    conversation = conversation_of(session, user)

    assert chat(user, "運費多少") == []  # waiting
    conversations.take(session, conversation_id=conversation.id, user_id=agent.id, actor=agent.email)
    assert chat(user, "我要退貨") == []  # human
    said = [m.text for m in conversations.messages(session, conversation_id=conversation.id)
            if m.sender == "customer"]
    assert said == ["真人", "運費多少", "我要退貨"]  # the agents see everything

    conversations.release(session, conversation_id=conversation.id, actor=agent.email)
    assert texts(chat(user, "我要退貨")) == [ANSWERS["return"]]


def test_outside_business_hours_the_customer_is_told_when_a_person_answers(session, chat, install_bot):
    make_retail_bank(session)
    install_bot(SATURDAY_10)
    user = line_user_id()

    (reply,) = chat(user, "真人客服")

    assert texts([reply]) == [
        "已為您轉接真人客服。目前是非服務時間（週一至週五 09:00–18:00），專人將於3月9日（週一）09:00 起在這裡回覆您，請見諒。"
    ]
    assert conversation_of(session, user).status == WAITING


def test_writing_again_out_of_hours_is_answered_with_when_a_person_answers_at_most_every_two_hours(
        session, chat, install_bot):
    install_bot(SATURDAY_10)
    user = line_user_id()
    chat(user, "真人客服")  # handed off, told Monday 09:00

    assert chat(user, "有人在嗎") == []  # just told: no second notice yet
    install_bot(SATURDAY_10 + timedelta(hours=3))
    (reminder,) = chat(user, "還在嗎？")
    assert texts([reminder]) == [
        "已收到您的訊息。目前是非服務時間（週一至週五 09:00–18:00），專人將於3月9日（週一）09:00 起在這裡回覆您。"
    ]
    assert chat(user, "好") == []  # reminded a moment ago
    install_bot(datetime(2026, 3, 9, 9, 30, tzinfo=TAIPEI))
    assert chat(user, "早安，請問處理了嗎") == []  # open: people answer, the bot stays out of it
    assert conversation_of(session, user).status == WAITING


def test_no_out_of_hours_reminder_once_a_person_has_the_conversation(session, chat, install_bot):
    agent = make_user(session, roles=["agent"])
    install_bot(SATURDAY_10)
    user = line_user_id()
    chat(user, "真人客服")
    conversations.take(session, conversation_id=conversation_of(session, user).id, user_id=agent.id,
                       actor=agent.email)
    install_bot(SATURDAY_10 + timedelta(hours=3))

    assert chat(user, "還在嗎？") == []


def test_the_handoff_message_is_in_english_for_an_english_speaking_contact(session, chat, install_bot):
    install_bot(SATURDAY_10)
    user = line_user_id()
    contacts.upsert_identity(session, external_id=user, locale="en")

    (reply,) = chat(user, "talk to a person")

    assert texts([reply]) == [
        "A person from our team will reply to you here. We are closed now (Mon–Fri 9:00–18:00); "
        "we will answer from Mon 9 Mar at 09:00."
    ]


@pytest.mark.parametrize(("at", "expected"), [
    (datetime(2026, 3, 4, 10, 0, tzinfo=TAIPEI), None),  # open: now
    (datetime(2026, 3, 4, 8, 30, tzinfo=TAIPEI), "今天 09:00 "),
    (datetime(2026, 3, 3, 18, 0, tzinfo=TAIPEI), "明天（週三）09:00 "),  # closing time is closed
    (datetime(2026, 3, 6, 20, 0, tzinfo=TAIPEI), "3月9日（週一）09:00 "),
    (datetime(2026, 3, 7, 1, 0, tzinfo=ZoneInfo("UTC")), "3月9日（週一）09:00 "),  # Sat 09:00 in Taipei
])
def test_business_hours_and_the_next_opening(at, expected):
    hours = CONFIG.business_hours
    opening = handoff.next_opening(hours, at)

    assert handoff.is_open(hours, at) is (expected is None)
    if expected is None:
        assert opening == at
    else:
        assert handoff.describe_opening(hours, opening, now=at, locale="zh-TW") == expected


def test_a_closed_day_is_skipped(session):
    hours = CONFIG.business_hours.model_copy(update={"closed_on": [datetime(2026, 3, 9).date()]})

    opening = handoff.next_opening(hours, SATURDAY_10)

    assert opening == datetime(2026, 3, 10, 9, 0, tzinfo=TAIPEI)
    assert handoff.describe_opening(hours, opening, now=SATURDAY_10, locale="en") == "Tue 10 Mar at 09:00"


def test_someone_who_objected_to_service_chat_gets_no_answer_and_no_handoff(session, chat):
    make_retail_bank(session)
    user = line_user_id()
    contact = contacts.upsert_identity(session, external_id=user).contact
    consent.object_to(session, contact_id=contact.id, purpose="service.chat", source="admin")

    assert chat(user, "運費多少") == []
    assert chat(user, "真人客服") == []

    assert conversations.find(session, contact_id=contact.id) is None  # nothing recorded either
    conversation = conversations.conversation_for(session, contact_id=contact.id)
    with pytest.raises(ConsentDenied):
        agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="您好", user_id=1, actor="a")


def test_an_agent_answers_with_the_reply_token_the_silent_bot_left(session, chat, line_sandbox):  # noqa: F811
    agent = make_user(session, roles=["agent"])
    user = line_user_id()
    chat(user, "真人客服")  # the bot's handoff message used this event's token
    chat(user, "我的訂單編號是 A123")  # the bot is silent: this token is unused
    conversation = conversation_of(session, user)

    plan = agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="收到，我幫您查詢",
                                          user_id=agent.id, actor=agent.email)
    delivery = deliver(session, plan)

    assert plan.reply_token is not None and delivery == line.REPLY_SENT
    assert conversation.status == HUMAN and conversation.assignee_id == agent.id
    last = [m for m in line_sandbox.messages() if user in m["to"]][-1]
    assert last["endpoint"] == "reply" and last["messages"][0]["text"] == "收到，我幫您查詢"


def test_a_question_resolved_as_a_new_entry_is_answered_next_time(session, chat):
    make_retail_bank(session)
    user = line_user_id()
    assert texts(chat(user, "門市幾點開門？")) == [NOT_SURE]
    (question,) = [g for g in unanswered.groups(session, limit=500) if g.representative == "門市幾點開門？"]

    unanswered.resolve_as_new_entry(session, question_ids=question.ids, key="hours", question="門市營業時間？",
                                    answer="門市每天 11:00–21:30 營業。", category="門市", actor="staff")

    assert texts(chat(user, "門市幾點開門？")) == ["門市每天 11:00–21:30 營業。"]
    assert conversation_of(session, user).misses == 0


def test_a_question_resolved_as_an_alternative_question_is_answered_next_time(session, chat):
    make_retail_bank(session)
    user = line_user_id()
    assert texts(chat(user, "收到瑕疵品怎麼辦")) == [NOT_SURE]
    question = session.scalar(select(UnansweredQuestion).where(UnansweredQuestion.text == "收到瑕疵品怎麼辦"))

    unanswered.resolve_as_alt_question(session, question_ids=[question.id], entry_key="return", actor="staff")

    assert texts(chat(user, "收到瑕疵品怎麼辦")) == [ANSWERS["return"]]


def test_install_puts_the_previous_handler_back(session):
    def previous(s, ctx):
        return None

    handlers.register_text_handler(previous)
    try:
        undo = bot.install()
        assert handlers.current_text_handler() is bot.handle
        undo()
        assert handlers.current_text_handler() is previous
    finally:
        handlers.register_text_handler(None)


def test_thanks_is_acknowledged_and_never_counts_as_a_miss(session, chat):
    make_retail_bank(session)
    user = line_user_id()

    chat(user, "你們門市幾點開")
    assert texts(chat(user, "謝謝！")) == [CONFIG.texts.acknowledged.zh_tw]
    assert texts(chat(user, "OK 👍")) == [CONFIG.texts.acknowledged.zh_tw]
    assert chat(user, "👍👍") == []

    conversation = conversation_of(session, user)
    assert conversation.status == BOT and conversation.misses == 1
    assert not session.scalar(select(UnansweredQuestion).where(UnansweredQuestion.text == "謝謝！"))


@pytest.mark.parametrize(("text", "expected"), [
    ("真人", "keyword"), ("真人客服", "keyword"), ("我要真人客服！", "keyword"), ("可以幫我轉客服嗎", "keyword"),
    ("請問客服在嗎", "keyword"), ("客服人員", "keyword"), ("我要找客服問退款的事", "keyword"),
    ("Talk to a person", "keyword"), ("can I speak to a human about my order", "keyword"), ("I need an agent", "keyword"),
    ("我要投訴", "keyword"),
    # Questions about the service, not requests for a person: the FAQ answers them.
    ("客服電話幾號", None), ("請問客服幾點上班", None), ("給我客服電話", None), ("客服可以幫我查訂單嗎", None),
    ("customer service phone number", None), ("How many points per person?", None), ("真人秀", None),
    # Complaints: one mild word is not enough, a clear complaint or several signs are.
    ("東西很爛我要退貨", None), ("到底什麼時候才會到！！！", None), ("爛透了!!!", "complaint"),
    ("等了兩個禮拜還沒到，很扯", "complaint"), ("三次了還沒收到？？？", "complaint"), ("投訴管道是什麼", "complaint"),
    ("worst service ever, refund now", "complaint"),
    ("運費多少", None), ("我要退貨", None),
])
def test_what_hands_a_conversation_to_people(text, expected):
    assert handoff.trigger(text, CONFIG.handoff) == expected


# --- a batch of events ------------------------------------------------------------------

def statements_of(session, work) -> list[str]:
    """The SQL statements `work()` sends."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = session.get_bind().engine
    sqlalchemy_event.listen(engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", count)
    return statements


def test_a_batch_looks_its_users_up_once_and_answers_each(session, chat, line_sandbox):  # noqa: F811
    make_retail_bank(session)
    users = [line_user_id() for _ in range(20)]
    for user in users:
        chat(user, "點數怎麼用")  # each has a contact and a conversation now
    arrive(session, line_sandbox, *(event("message", user, text="運費多少") for user in users))

    statements = statements_of(session, jobs.process_events)

    session.expire_all()
    for user in users:
        assert bot_messages(session, user)[-1].text == ANSWERS["ship-fee"]
    # Reads are the batch's (claim, events, contacts, suppressions, consent, conversations,
    # the FAQ's fingerprint), not each event's; each event writes question and answer at once.
    reads = [s for s in statements if s.lstrip().startswith("SELECT")]
    assert len(reads) <= 16 < len(users), "\n".join(reads)
    # (PostgreSQL: one multi-row INSERT; the first question is flushed alone, by the FAQ's
    # fingerprint query. SQLite: an INSERT a row.)
    one_statement = session.get_bind().dialect.name == "postgresql"
    inserts = sum(s.startswith("INSERT INTO chat_message") for s in statements)
    assert inserts <= (len(users) + 1 if one_statement else 2 * len(users))


def test_a_user_who_blocks_the_account_is_not_recorded_later_in_the_same_batch(session, chat, line_sandbox):  # noqa: F811
    make_retail_bank(session)
    user = line_user_id()
    chat(user, "點數怎麼用")
    arrive(session, line_sandbox, event("unfollow", user), event("message", user, text="運費多少"))

    while jobs.process_events():
        pass

    session.expire_all()
    recorded = [m.text for m in conversations.messages(session, conversation_id=conversation_of(session, user).id)]
    assert "運費多少" not in recorded  # service.chat no longer reaches a blocked contact


def test_an_erased_user_writing_in_a_batch_is_neither_re_added_nor_answered(session, chat, line_sandbox):  # noqa: F811
    make_retail_bank(session)
    user, other = line_user_id(), line_user_id()
    chat(user, "點數怎麼用")
    contacts.erase(session, contact_id=contacts.require_by_external_id(session, user).id, actor="test")
    before = len(line_sandbox.messages())
    arrive(session, line_sandbox, event("message", user, text="運費多少"),
                    event("message", other, text="運費多少"))

    while jobs.process_events():
        pass

    assert contacts.get_by_external_id(session, user) is None
    answered = [m for m in line_sandbox.messages()[before:] if m["accepted"]]
    assert [m["to"] for m in answered] == [[other]]
