"""REST API of the FAQ bot: /api/v1/faq (entries, trying a question, the unanswered queue,
the calibration) and /api/v1/chat (the agents' side of conversations)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.chatbot.factories import customer_says, make_calibration, make_entry, make_retail_bank, queue_questions
from tests.contacts.factories import make_contact
from tests.helpers import api_client
from tests.inbox.conftest import line_sandbox, sandbox_server  # noqa: F401 - fixtures
from toolkit.chatbot import conversations, service
from toolkit.chatbot.models import ChatMessage, FaqEntryVersion

FAQ = "/api/v1/faq"
CHAT = "/api/v1/chat"
NEW = {"key": "gift-wrap", "question": "可以幫忙包裝禮物嗎？", "answer": "結帳時勾選「禮品包裝」，每件加收 NT$30。",
       "category": "訂單與配送", "alt_questions": ["有禮物包裝嗎"]}


# --- who may do what ----------------------------------------------------------------------

def test_the_api_needs_a_token(session):
    client = api_client(session, roles=None)

    assert client.get(f"{FAQ}/entries").status_code == 401
    assert client.get(f"{CHAT}/conversations").status_code == 401


@pytest.mark.parametrize("role", ["privacy_officer"])
def test_roles_without_faq_work_get_403(session, role):
    client = api_client(session, roles=[role])

    for response in (client.get(f"{FAQ}/entries"), client.post(f"{FAQ}/match", json={"query": "運費"}),
                     client.get(f"{FAQ}/unanswered"), client.get(f"{CHAT}/conversations")):
        assert response.status_code == 403, response.request.url
        assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("role", ["agent", "approver"])
def test_readers_read_but_may_not_change_the_bank(session, role):
    entry = make_entry(session, key="R1")
    queued = queue_questions(session, "可以開發票嗎")
    client = api_client(session, roles=[role])

    assert client.get(f"{FAQ}/entries/R1").status_code == 200
    assert client.post(f"{FAQ}/match", json={"query": "測試"}).status_code == 200
    assert client.post(f"{FAQ}/entries", json=NEW).status_code == 403
    assert client.patch(f"{FAQ}/entries/R1", json={"answer": "改掉"}).status_code == 403
    assert client.post(f"{FAQ}/entries/R1/deactivate").status_code == 403
    assert client.post(f"{FAQ}/unanswered/dismiss", json={"question_ids": [queued[0].id]}).status_code == 403
    session.refresh(entry)
    assert entry.version == 1 and entry.active


def test_editors_change_the_bank_but_do_not_read_conversations(session):
    client = api_client(session, roles=["editor"])

    assert client.post(f"{FAQ}/entries", json=NEW).status_code == 201
    assert client.get(f"{CHAT}/conversations").status_code == 403


# --- entries ------------------------------------------------------------------------------

def test_create_read_and_a_taken_key_is_409(session):
    client = api_client(session, roles=["ops"])

    created = client.post(f"{FAQ}/entries", json=NEW)
    again = client.post(f"{FAQ}/entries", json={**NEW, "answer": "不會覆蓋"})
    read = client.get(f"{FAQ}/entries/gift-wrap")

    assert created.status_code == 201
    body = read.json()
    assert body["key"] == "gift-wrap" and body["version"] == 1 and body["active"] is True
    assert body["alt_questions"] == ["有禮物包裝嗎"] and body["generated_questions"] == []
    assert body["updated_by"].startswith("user:ops-")
    assert again.status_code == 409 and again.json()["code"] == "faq_entry_exists"
    assert service.get_entry(session, "gift-wrap").answer == NEW["answer"]


def test_content_the_service_refuses_is_a_422_with_its_reason(session):
    client = api_client(session, roles=["ops"])

    control = client.post(f"{FAQ}/entries", json={**NEW, "answer": "結帳時\x00勾選"})
    too_long = client.post(f"{FAQ}/entries", json={**NEW, "answer": "😀" * service.MAX_ANSWER})  # 2 units each
    unknown_field = client.post(f"{FAQ}/entries", json={**NEW, "score": 1})

    assert control.status_code == 422 and control.json()["code"] == "faq_entry_invalid"
    assert "control character" in control.json()["detail"]
    assert too_long.status_code == 422
    assert unknown_field.status_code == 422
    assert service.get_entry(session, "gift-wrap") is None


def test_list_filters_and_pages(session):
    make_retail_bank(session)
    make_entry(session, key="old-promo", question="去年的週年慶？", category="優惠", active=False)
    client = api_client(session, roles=["agent"])

    everything = client.get(f"{FAQ}/entries", params={"limit": 500}).json()
    inactive = client.get(f"{FAQ}/entries", params={"active": False}).json()
    by_category = client.get(f"{FAQ}/entries", params={"category": "退換貨"}).json()
    by_text = client.get(f"{FAQ}/entries", params={"search": "點數"}).json()
    first_page = client.get(f"{FAQ}/entries", params={"limit": 1, "search": "？"}).json()

    assert {"ship-fee", "return", "points", "old-promo"} <= {e["key"] for e in everything["data"]}
    assert [e["key"] for e in inactive["data"]] == ["old-promo"]
    assert [e["key"] for e in by_category["data"]] == ["return"]
    assert [e["key"] for e in by_text["data"]] == ["points"]
    assert len(first_page["data"]) == 1 and first_page["count"] == 4


def test_patch_makes_a_new_version_and_the_history_keeps_the_old_one(session):
    make_entry(session, key="R7", question="營業時間？", answer="每天 10:00-22:00。")
    client = api_client(session, roles=["ops"])

    changed = client.patch(f"{FAQ}/entries/R7", json={"answer": "每天 11:00-21:30。", "note": "冬季時間"})
    same = client.patch(f"{FAQ}/entries/R7", json={"answer": "每天 11:00-21:30。"})
    versions = client.get(f"{FAQ}/entries/R7/versions").json()

    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert same.json()["version"] == 2  # the same content is no new version
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["content"]["answer"] == "每天 11:00-21:30。" and versions[0]["note"] == "冬季時間"
    assert versions[1]["content"]["answer"] == "每天 10:00-22:00。"


def test_put_creates_then_replaces_by_key(session):
    client = api_client(session, roles=["ops"])
    content = {key: value for key, value in NEW.items() if key != "key"}

    created = client.put(f"{FAQ}/entries/gift-wrap", json=content)
    replaced = client.put(f"{FAQ}/entries/gift-wrap", json={**content, "alt_questions": []})
    unchanged = client.put(f"{FAQ}/entries/gift-wrap", json={**content, "alt_questions": []})

    assert created.status_code == 201 and created.json()["version"] == 1
    assert replaced.status_code == 200 and replaced.json()["version"] == 2 and replaced.json()["alt_questions"] == []
    assert unchanged.status_code == 200 and unchanged.json()["version"] == 2


def test_a_key_with_a_slash_is_addressable(session):
    client = api_client(session, roles=["ops"])
    content = {key: value for key, value in NEW.items() if key != "key"}

    assert client.put(f"{FAQ}/entries/retail/R10", json=content).status_code == 201
    assert client.get(f"{FAQ}/entries/retail/R10").json()["key"] == "retail/R10"
    assert client.patch(f"{FAQ}/entries/retail/R10", json={"category": "包裝"}).json()["version"] == 2
    assert [v["version"] for v in client.get(f"{FAQ}/entries/retail/R10/versions").json()] == [2, 1]
    assert client.post(f"{FAQ}/entries/retail/R10/deactivate").json()["active"] is False


def test_unknown_keys_are_404(session):
    client = api_client(session, roles=["ops"])

    for response in (client.get(f"{FAQ}/entries/nope"), client.patch(f"{FAQ}/entries/nope", json={"answer": "x"}),
                     client.get(f"{FAQ}/entries/nope/versions"), client.post(f"{FAQ}/entries/nope/activate")):
        assert response.status_code == 404 and response.json()["code"] == "faq_entry_not_found"


def test_a_deactivated_entry_is_not_answered_until_activated_again(session):
    make_retail_bank(session)
    client = api_client(session, roles=["ops"])
    asked = {"query": "運費多少"}
    assert client.post(f"{FAQ}/match", json=asked).json()["entry_id"] == "ship-fee"

    off = client.post(f"{FAQ}/entries/ship-fee/deactivate").json()
    while_off = client.post(f"{FAQ}/match", json=asked).json()
    on = client.post(f"{FAQ}/entries/ship-fee/activate").json()

    assert off["active"] is False and off["version"] == 2
    assert while_off["entry_id"] != "ship-fee" and "ship-fee" not in [c["entry_id"] for c in while_off["candidates"]]
    assert on["active"] is True and on["version"] == 3
    assert client.post(f"{FAQ}/match", json=asked).json()["entry_id"] == "ship-fee"
    entry = service.get_entry(session, "ship-fee")
    notes = session.scalars(select(FaqEntryVersion.note).where(FaqEntryVersion.entry_id == entry.id)
                            .order_by(FaqEntryVersion.version)).all()
    assert notes == [None, "deactivated", "activated"]


# --- trying a question, the calibration ---------------------------------------------------

def test_match_answers_a_bank_question_with_its_candidates(session):
    make_retail_bank(session)
    client = api_client(session, roles=["agent"])

    body = client.post(f"{FAQ}/match", json={"query": "請問免運門檻是多少"}).json()

    assert body["answered"] is True and body["entry_id"] == body["best_id"] == "ship-fee"
    assert body["answer"] == "單筆訂單滿 NT$990 免運費，未滿收運費 NT$100。"
    assert 0 < body["score"] <= 1
    assert body["candidates"][0] == {"entry_id": "ship-fee", "score": body["candidates"][0]["score"],
                                     "question": "運費怎麼計算？滿多少免運？"}
    assert body["features"]


def test_match_declines_what_the_bank_does_not_cover(session):
    make_retail_bank(session)
    client = api_client(session, roles=["agent"])

    body = client.post(f"{FAQ}/match", json={"query": "明天台北會下雨嗎"}).json()
    empty = client.post(f"{FAQ}/match", json={"query": ""})

    assert body["answered"] is False and body["entry_id"] is None and body["answer"] is None
    assert empty.status_code == 422


def test_the_calibration_is_404_until_one_is_stored(session):
    client = api_client(session, roles=["agent"])
    if service.latest_calibration(session) is None:
        assert client.get(f"{FAQ}/calibration").status_code == 404

    stored = make_calibration(session, report={"answered_correct": 0.8, "oos_rejected": 0.95}, examples=42)
    body = client.get(f"{FAQ}/calibration").json()

    assert body["id"] == stored.id and body["examples"] == 42 and body["report"]["oos_rejected"] == 0.95


# --- the unanswered queue -------------------------------------------------------------------

def test_groups_list_the_open_questions(session):
    asked = queue_questions(session, "你們門市幾點開", "門市幾點開門？", "門市營業到幾點", "有沒有賣貓飼料", best="R1")
    client = api_client(session, roles=["agent"])

    body = client.get(f"{FAQ}/unanswered", params={"limit": 500}).json()

    assert body["open"] >= 4
    mine = [g for g in body["data"] if {q["id"] for q in g["questions"]} & {q.id for q in asked}]
    assert sorted(g["count"] for g in mine) == [1, 3]
    hours = next(g for g in mine if g["count"] == 3)
    assert hours["representative"] in ("你們門市幾點開", "門市幾點開門？", "門市營業到幾點")
    assert hours["best_entry_key"] == "R1" and len(hours["questions"]) == 3 and hours["latest_at"]


def test_resolving_a_group_as_a_new_entry_makes_the_bot_answer_it(session):
    make_retail_bank(session)
    asked = queue_questions(session, "可以開統編嗎", "發票可以打統編嗎")
    client = api_client(session, roles=["ops"])

    created = client.post(f"{FAQ}/unanswered/new-entry", json={
        "question_ids": [q.id for q in asked], "key": "invoice-vat", "question": "發票可以打統一編號嗎？",
        "answer": "結帳時在發票欄位填入統一編號即可。", "category": "發票"})
    again = client.post(f"{FAQ}/unanswered/new-entry", json={
        "question_ids": [q.id for q in asked], "key": "invoice-2", "question": "x", "answer": "y"})
    answered = client.post(f"{FAQ}/match", json={"query": "可以開統編嗎"}).json()

    assert created.status_code == 201, created.text
    assert created.json()["key"] == "invoice-vat"
    assert set(created.json()["alt_questions"]) == {"可以開統編嗎", "發票可以打統編嗎"}
    assert again.status_code == 409 and again.json()["code"] == "unanswered_not_open"
    assert answered["answered"] is True and answered["entry_id"] == "invoice-vat"


def test_resolving_as_alternative_questions_and_dismissing(session):
    make_retail_bank(session)
    alt = queue_questions(session, "寄送要多少錢", best="ship-fee")
    chatter = queue_questions(session, "哈囉你好", "哈囉")
    client = api_client(session, roles=["editor"])

    added = client.post(f"{FAQ}/unanswered/alt-question", json={"question_ids": [alt[0].id], "entry_key": "ship-fee"})
    missing = client.post(f"{FAQ}/unanswered/alt-question", json={"question_ids": [chatter[0].id], "entry_key": "nope"})
    dismissed = client.post(f"{FAQ}/unanswered/dismiss", json={"question_ids": [q.id for q in chatter]})

    assert added.status_code == 200 and "寄送要多少錢" in added.json()["alt_questions"]
    assert added.json()["version"] == 2
    assert missing.status_code == 404
    assert dismissed.json() == {"dismissed": 2}
    session.expire_all()
    assert {q.status for q in (*alt, *chatter)} == {"resolved", "dismissed"}


def test_question_ids_are_checked_before_the_database(session):
    client = api_client(session, roles=["ops"])

    for ids in ([], [0], [2**63], ["x"]):
        response = client.post(f"{FAQ}/unanswered/dismiss", json={"question_ids": ids})
        assert response.status_code == 422, ids


# --- conversations ----------------------------------------------------------------------------

def test_conversations_list_by_status_with_the_waiting_count(session):
    quiet, loud = make_contact(session), make_contact(session)
    customer_says(session, quiet, "營業時間？")
    waiting, _ = customer_says(session, loud, "我要找真人")
    conversations.hand_off(session, conversation_id=waiting.id, reason="keyword")
    client = api_client(session, roles=["agent"])

    everything = client.get(f"{CHAT}/conversations", params={"limit": 500}).json()
    only_waiting = client.get(f"{CHAT}/conversations", params={"status": "waiting", "limit": 500}).json()
    bad = client.get(f"{CHAT}/conversations", params={"status": "closed"})

    assert {c["contact_id"] for c in everything["data"]} >= {quiet.id, loud.id}
    assert waiting.id in [c["id"] for c in only_waiting["data"]]
    assert all(c["status"] == "waiting" for c in only_waiting["data"])
    assert everything["waiting"] == only_waiting["count"] == conversations.waiting_count(session)
    assert bad.status_code == 422


def test_messages_take_and_release(session):
    contact = make_contact(session)
    conversation, _ = customer_says(session, contact, "我要投訴")
    conversations.hand_off(session, conversation_id=conversation.id, reason="complaint")
    client = api_client(session, roles=["agent"])

    taken = client.post(f"{CHAT}/conversations/{conversation.id}/take").json()
    released = client.post(f"{CHAT}/conversations/{conversation.id}/release").json()
    messages = client.get(f"{CHAT}/conversations/{conversation.id}/messages").json()

    assert taken["status"] == "human" and taken["assignee_id"] is not None
    assert released["status"] == "bot" and released["assignee_id"] is None
    senders = [m["sender"] for m in messages["data"]]
    assert senders[0] == "customer" and senders[1:] == ["system", "system", "system"]
    assert messages["data"][0]["text"] == "我要投訴" and messages["count"] == 4
    assert client.get(f"{CHAT}/conversations/987654321").status_code == 404


def test_an_agent_reply_goes_out_by_the_reply_token(session, line_sandbox):
    contact = make_contact(session)
    conversation, row = customer_says(session, contact, "訂單 A123 到哪了")
    line_sandbox.register_reply_token(row.reply_token, contact.identities[0].external_id)
    client = api_client(session, roles=["agent"])

    sent = client.post(f"{CHAT}/conversations/{conversation.id}/reply", json={"text": "您好，馬上為您查詢。"})

    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["sender"] == "agent" and body["delivery"] == "reply_sent" and body["author_id"] is not None
    delivered = [m for m in line_sandbox.messages() if contact.identities[0].external_id in m["to"]]
    assert [m["messages"][0]["text"] for m in delivered] == ["您好，馬上為您查詢。"]
    assert client.get(f"{CHAT}/conversations/{conversation.id}").json()["status"] == "human"


def test_an_agent_reply_without_a_line_channel_is_recorded_as_failed(session, no_line):
    contact = make_contact(session)
    conversation, _ = customer_says(session, contact, "在嗎")
    client = api_client(session, roles=["ops"])

    sent = client.post(f"{CHAT}/conversations/{conversation.id}/reply", json={"text": "在的，請說。"})

    assert sent.status_code == 201 and sent.json()["delivery"] == "failed"


def test_no_reply_to_a_customer_who_objected_to_service_messages(session, no_line):
    contact = make_contact(session, consent_to={"service.chat": "object"})
    conversation, _ = customer_says(session, contact, "你好")
    client = api_client(session, roles=["agent"])
    before = session.scalar(select(func.count()).select_from(ChatMessage)
                            .where(ChatMessage.conversation_id == conversation.id))

    refused = client.post(f"{CHAT}/conversations/{conversation.id}/reply", json={"text": "您好"})
    blank = client.post(f"{CHAT}/conversations/{conversation.id}/reply", json={"text": ""})

    assert refused.status_code == 403 and refused.json()["code"] == "chat_not_allowed"
    assert blank.status_code == 422
    assert session.scalar(select(func.count()).select_from(ChatMessage)
                          .where(ChatMessage.conversation_id == conversation.id)) == before

