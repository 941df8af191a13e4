"""Admin pages of the FAQ bot: entries (versions, generated questions, trying a question),
the accuracy report, the unanswered queue, and the agents' inbox."""

from __future__ import annotations

import re

import pytest

from tests.chatbot.factories import customer_says, make_calibration, make_entry, make_retail_bank, queue_questions
from tests.contacts.factories import make_contact
from tests.inbox.conftest import line_sandbox, sandbox_server  # noqa: F401 - fixtures
from tests.web.helpers import logged_in_client, page_csrf
from toolkit.chatbot import conversations, service, unanswered
from toolkit.chatbot.conversations import BOT_SENDER, OUT
from toolkit.chatbot.pages.common import system_note
from toolkit.web import i18n

JSON = {"accept": "application/json"}


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def section(html: str, pattern: str) -> str:
    """The element starting at the first match of `pattern` (up to its closing tag)."""
    match = re.search(pattern, html)
    assert match, f"{pattern!r} not on the page"
    tag = re.match(r"<(\w+)", html[match.start():]).group(1)
    depth = 0
    for edge in re.finditer(rf"<(/?){tag}\b[^>]*>", html[match.start():]):
        depth += -1 if edge.group(1) else 1
        if depth == 0:
            return html[match.start(): match.start() + edge.end()]
    raise AssertionError(f"{pattern!r} is not closed")


# --- who may see what -----------------------------------------------------------------------

FAQ_PAGES = ["/admin/faq", "/admin/faq/new", "/admin/faq/try?q=運費", "/admin/faq/accuracy", "/admin/faq/unanswered"]


def test_privacy_officers_get_403_on_every_faq_and_chat_page(session):
    client = logged_in_client(session, ["privacy_officer"])

    for path in [*FAQ_PAGES, "/admin/chat", "/admin/chat/waiting"]:
        assert client.get(path).status_code == 403, path
    nav = client.get("/admin/contacts").text
    assert "/admin/faq" not in nav and "/admin/chat" not in nav and "data-waiting-badge" not in nav


def test_agents_read_the_bank_but_the_forms_are_not_theirs(session):
    entry = make_entry(session, key="R1", generated_questions=["AI 寫的問法"])
    client = logged_in_client(session, ["agent"])
    token = page_csrf(client, "/admin/faq")

    page = client.get("/admin/faq/entries/R1").text
    new_form = client.get("/admin/faq/new")
    edit = client.post("/admin/faq/entries/R1/edit", data={"csrf_token": token, "question": "改", "answer": "改"})
    off = client.post("/admin/faq/entries/R1/active", data={"csrf_token": token, "active": "false"})

    assert 'action="/admin/faq/entries/R1/edit"' not in page and "AI 寫的問法" in page
    assert 'name="verdict"' not in page and "/admin/faq/new" not in client.get("/admin/faq").text
    assert new_form.status_code == edit.status_code == off.status_code == 403
    session.refresh(entry)
    assert entry.version == 1 and entry.active


def test_the_nav_shows_faq_and_conversations_with_the_waiting_count(session):
    conversation, _ = customer_says(session, make_contact(session), "我要找真人")
    conversations.hand_off(session, conversation_id=conversation.id, reason="keyword")
    waiting = conversations.waiting_count(session)
    client = logged_in_client(session, ["agent"])

    chat_page = client.get("/admin/chat").text
    badge = section(chat_page, r"<span class=\"badge\" data-waiting-badge")
    editor_nav = logged_in_client(session, ["editor"]).get("/admin/contacts").text

    assert 'href="/admin/faq"' in chat_page and 'href="/admin/chat"' in chat_page
    assert badge.endswith(f">{waiting}</span>") and "hidden" not in badge
    assert client.get("/admin/chat/waiting", headers=JSON).json() == {"waiting": waiting}
    assert 'href="/admin/faq"' in editor_nav and 'href="/admin/chat"' not in editor_nav


def test_a_post_without_the_csrf_token_is_refused(session):
    make_entry(session, key="R1")
    client = logged_in_client(session, ["ops"])

    response = client.post("/admin/faq/entries/R1/active", data={"active": "false"})

    assert response.status_code == 403 and "CSRF" in response.text
    assert service.get_entry(session, "R1").active


# --- entries ----------------------------------------------------------------------------------

def test_the_list_shows_counts_entries_and_filters(session):
    make_retail_bank(session)
    make_entry(session, key="gen-1", question="禮物包裝？", category="服務", generated_questions=["可以包裝嗎", "有包裝服務嗎"])
    make_entry(session, key="old", question="舊活動？", category="服務", active=False)
    counts = service.counts(session)
    client = logged_in_client(session, ["editor"])

    page = client.get("/admin/faq").text
    by_category = client.get("/admin/faq", params={"category": "服務", "state": "inactive"}).text
    by_search = client.get("/admin/faq", params={"search": "點數"}).text

    for name in ("entries", "active", "alt_questions", "generated_questions"):
        assert f'data-count="{name}">{counts[name]}<' in page
    assert 'href="/admin/faq/new"' in page and 'action="/admin/faq/try"' in page
    gen_row = section(page, r'<tr data-key="gen-1"')
    assert "+ 2" in gen_row and "generated" in gen_row
    assert re.findall(r'<tr data-key="([^"]+)"', by_category) == ["old"]
    assert re.findall(r'<tr data-key="([^"]+)"', by_search) == ["points"]
    assert 'value="服務" selected' in by_category


def test_creating_an_entry_from_the_form(session):
    client = logged_in_client(session, ["ops"], email="ops-faq@test.example")
    token = page_csrf(client, "/admin/faq/new")

    response = client.post("/admin/faq/new", data={
        "csrf_token": token, "key": "gift", "question": "可以包裝禮物嗎？", "answer": "可以，每件 NT$30。",
        "category": "服務", "alt_questions": "有禮物包裝嗎\n\n 包裝要錢嗎 \n"})

    assert response.status_code == 303 and response.headers["location"] == "/admin/faq/entries/gift?done=created"
    page = client.get(response.headers["location"]).text
    assert "Entry created" in page
    entry = service.get_entry(session, "gift")
    assert entry.alt_questions == ["有禮物包裝嗎", "包裝要錢嗎"] and entry.updated_by == "user:ops-faq@test.example"


def test_a_taken_id_or_bad_content_shows_the_form_again_with_what_was_typed(session):
    make_entry(session, key="gift", answer="原本的答案")
    client = logged_in_client(session, ["ops"])
    token = page_csrf(client, "/admin/faq/new")
    form = {"csrf_token": token, "key": "gift", "question": "新問題？", "answer": "新答案", "alt_questions": "別的問法"}

    taken = client.post("/admin/faq/new", data=form)
    blank = client.post("/admin/faq/new", data={**form, "key": "gift-2", "answer": "新\x00答案"})

    assert taken.status_code == 409 and "This id is already taken" in taken.text
    assert 'value="新問題？"' in taken.text and ">別的問法</textarea>" in taken.text
    assert blank.status_code == 422 and "The entry breaks a rule" in blank.text
    assert service.get_entry(session, "gift").answer == "原本的答案" and service.get_entry(session, "gift-2") is None


def test_editing_makes_versions_and_the_history_marks_what_changed(session):
    make_entry(session, key="hours", question="營業時間？", answer="10:00-22:00", alt_questions=["幾點開"])
    client = logged_in_client(session, ["editor"])
    token = page_csrf(client, "/admin/faq/entries/hours")
    form = {"csrf_token": token, "question": "營業時間？", "answer": "11:00-21:30", "category": "",
            "alt_questions": "幾點開\n幾點關", "note": "冬季"}

    saved = client.post("/admin/faq/entries/hours/edit", data=form)
    same = client.post("/admin/faq/entries/hours/edit", data=form)
    history = client.get("/admin/faq/entries/hours/versions").text

    assert saved.headers["location"] == "/admin/faq/entries/hours?done=saved"
    assert same.headers["location"] == "/admin/faq/entries/hours?done=unchanged"
    assert "Saved as a new version" in client.get(saved.headers["location"]).text
    assert re.findall(r'data-version="(\d+)"', history) == ["2", "1"]
    newest = section(history, r'<section class="card version" data-version="2"')
    assert "冬季" in newest and "current" in newest
    changed = re.findall(r'<div class="changed" data-field="(\w+)"', newest)
    assert changed == ["answer", "alt_questions"]


def test_deactivating_and_activating_from_the_page(session):
    make_retail_bank(session)
    client = logged_in_client(session, ["ops"])
    token = page_csrf(client, "/admin/faq/entries/ship-fee")

    off = client.post("/admin/faq/entries/ship-fee/active", data={"csrf_token": token, "active": "false"})
    page = client.get(off.headers["location"]).text
    assert 'data-state="inactive"' in page and "the bot no longer answers with it" in page
    assert not service.match(session, "運費多少").answered or service.match(session, "運費多少").entry_id != "ship-fee"

    on = client.post("/admin/faq/entries/ship-fee/active", data={"csrf_token": token, "active": "true"})
    assert 'data-state="active"' in client.get(on.headers["location"]).text
    assert service.match(session, "運費多少").entry_id == "ship-fee"


def test_generated_questions_are_marked_and_kept_or_deleted_one_by_one(session):
    make_entry(session, key="pay", question="可以用什麼付款？", alt_questions=["付款方式"],
               generated_questions=["能刷卡嗎", "可以用 LINE Pay 嗎", "能貨到付款嗎"])
    client = logged_in_client(session, ["ops"], lang="zh-TW")
    page = client.get("/admin/faq/entries/pay").text
    token = page_csrf(client, "/admin/faq/entries/pay")

    assert page.count('<span class="tag generated"') >= 4  # the heading's and one a question
    assert "AI 產生" in section(page, r'<tr data-generated="能刷卡嗎"')
    kept = client.post("/admin/faq/entries/pay/generated",
                       data={"csrf_token": token, "question": "能刷卡嗎", "verdict": "keep"})
    client.post("/admin/faq/entries/pay/generated",
                data={"csrf_token": token, "question": "能貨到付款嗎", "verdict": "delete"})
    twice = client.post("/admin/faq/entries/pay/generated",
                        data={"csrf_token": token, "question": "能貨到付款嗎", "verdict": "delete"})

    assert kept.headers["location"] == "/admin/faq/entries/pay?done=kept#generated"
    assert twice.status_code == 303
    entry = service.get_entry(session, "pay")
    assert entry.alt_questions == ["付款方式", "能刷卡嗎"] and entry.generated_questions == ["可以用 LINE Pay 嗎"]
    assert entry.version == 3
    assert "已保留為其他問法" in client.get(kept.headers["location"]).text


def test_an_entry_whose_id_holds_a_slash_or_a_question_mark(session):
    make_entry(session, key="retail/R1?", question="斜線的問答？")
    client = logged_in_client(session, ["ops"])

    listing = client.get("/admin/faq", params={"search": "斜線"}).text
    link = re.search(r'href="(/admin/faq/entries/retail/R1[^"]*)"', listing).group(1)
    page = client.get(link)

    assert link == "/admin/faq/entries/retail/R1%3F"
    assert page.status_code == 200 and "斜線的問答？" in page.text
    assert client.get(link + "/versions").status_code == 200


def test_unknown_entry_is_a_404_page(session):
    client = logged_in_client(session, ["agent"])

    response = client.get("/admin/faq/entries/no-such-entry")

    assert response.status_code == 404 and "no FAQ entry" in response.text


# --- trying a question, accuracy ---------------------------------------------------------------

def test_trying_a_question_shows_the_answer_and_the_score(session):
    make_retail_bank(session)
    client = logged_in_client(session, ["agent"])

    answered = client.get("/admin/faq/try", params={"q": "請問免運門檻是多少"}).text
    unsure = client.get("/admin/faq/try", params={"q": "明天台北會下雨嗎"}).text

    result = section(answered, r'<section class="card try-result"')
    assert 'data-answered="true"' in result and 'data-entry="ship-fee"' in result
    assert "單筆訂單滿 NT$990 免運費" in result and re.search(r"data-score>[01]\.\d\d<", result)
    assert 'data-answered="false"' in unsure and "The bot is not sure" in unsure


def test_accuracy_without_a_calibration_says_the_default_is_in_use(session):
    if service.latest_calibration(session) is not None:
        pytest.skip("a calibration is stored in this database")
    client = logged_in_client(session, ["editor"])

    page = client.get("/admin/faq/accuracy").text

    assert "No calibration yet: the shipped default decision is in use." in page
    assert re.search(r'data-rate="oos_rejected".*?\d+\.\d%', page, re.S)  # the default's own rates


def test_accuracy_shows_the_last_calibration_and_the_previous_decision(session):
    report = {"examples": 120, "in_scope": 90, "out_of_scope": 30, "answered_correct": 0.82,
              "answered_wrong_entry": 0.03,
              "wrong": 0.04, "in_scope_rejected": 0.15, "rejected": 0.3, "oos_rejected": 0.933, "top1": 0.9,
              "threshold": 0.61, "previous": {"answered_correct": 0.7, "oos_rejected": 0.9, "threshold": 0.5}}
    make_calibration(session, report=report, examples=120, source="brand.jsonl", actor="user:ops@test.example")
    client = logged_in_client(session, ["agent"])

    page = client.get("/admin/faq/accuracy").text

    assert "brand.jsonl" in page and "user:ops@test.example" in page and "data-examples>120<" in page
    correct = text_of(section(page, r'<tr data-rate="answered_correct"'))
    assert "82.0%" in correct and "70.0%" in correct
    assert "93.3%" in text_of(section(page, r'<tr data-rate="oos_rejected"'))
    assert "Previous decision" in page and "No calibration yet" not in page


# --- the unanswered queue ---------------------------------------------------------------------

def test_the_queue_shows_groups_with_the_best_entry_and_a_prefilled_form(session):
    make_retail_bank(session)
    queue_questions(session, "你們門市幾點開", "門市幾點開門？", best="points")
    client = logged_in_client(session, ["ops"])

    page = client.get("/admin/faq/unanswered").text

    group = section(page, r'<article class="group" data-representative="[^"]*門市[^"]*" data-count="2"')
    representative = re.search(r'data-representative="([^"]+)"', group).group(1)
    assert 'data-best-entry="points"' in group
    assert f'name="question" value="{representative}"' in group
    assert 'name="entry_key" value="points"' in group
    assert len(re.findall(r'name="question_ids"', group)) == 6  # three forms, two questions each
    assert "你們門市幾點開" in group and "門市幾點開門？" in group


def test_a_group_becomes_a_new_entry_in_one_step(session):
    make_retail_bank(session)
    asked = queue_questions(session, "你們門市幾點開", "門市幾點開門？")
    client = logged_in_client(session, ["ops"])
    token = page_csrf(client, "/admin/faq/unanswered")

    response = client.post("/admin/faq/unanswered/new-entry", data={
        "csrf_token": token, "question_ids": [q.id for q in asked], "key": "store-hours",
        "question": "門市營業時間？", "answer": "每天 10:00-22:00。", "category": "門市"})

    assert response.headers["location"] == "/admin/faq/unanswered?done=new_entry&key=store-hours"
    done = client.get(response.headers["location"]).text
    assert "Entry created" in done and 'href="/admin/faq/entries/store-hours"' in done
    assert service.match(session, "門市幾點開門？").entry_id == "store-hours"


def test_a_failed_resolution_keeps_what_was_typed_in_its_group(session):
    make_retail_bank(session)
    asked = queue_questions(session, "可以用信用卡分期嗎")
    client = logged_in_client(session, ["ops"])
    token = page_csrf(client, "/admin/faq/unanswered")

    taken = client.post("/admin/faq/unanswered/new-entry", data={
        "csrf_token": token, "question_ids": [asked[0].id], "key": "points", "question": "分期？", "answer": "可以分 3 期"})
    missing = client.post("/admin/faq/unanswered/alt-question", data={
        "csrf_token": token, "question_ids": [asked[0].id], "entry_key": "nope"})

    assert taken.status_code == 409 and "already exists" in taken.text
    group = section(taken.text, r'<article class="group" data-representative="可以用信用卡分期嗎"')
    assert "<details class=\"new-entry\" open>" in group and ">可以分 3 期</textarea>" in group
    assert missing.status_code == 404 and 'name="entry_key" value="nope"' in missing.text
    assert unanswered.open_count(session) >= 1 and asked[0].status == "open"


def test_a_group_added_to_an_entry_or_dismissed(session):
    make_retail_bank(session)
    alt = queue_questions(session, "寄送要多少錢")
    chatter = queue_questions(session, "哈囉你好")
    client = logged_in_client(session, ["editor"], lang="zh-TW")
    token = page_csrf(client, "/admin/faq/unanswered")

    added = client.post("/admin/faq/unanswered/alt-question",
                        data={"csrf_token": token, "question_ids": [alt[0].id], "entry_key": "ship-fee"})
    dismissed = client.post("/admin/faq/unanswered/dismiss",
                            data={"csrf_token": token, "question_ids": [chatter[0].id]})

    assert "已加入其他問法" in client.get(added.headers["location"]).text
    assert dismissed.headers["location"] == "/admin/faq/unanswered?done=dismissed"
    assert "寄送要多少錢" in service.get_entry(session, "ship-fee").alt_questions
    page = client.get("/admin/faq/unanswered").text
    assert 'data-representative="哈囉你好"' not in page and 'data-representative="寄送要多少錢"' not in page


def test_agents_see_the_queue_without_its_forms(session):
    queue_questions(session, "有賣貓飼料嗎")
    client = logged_in_client(session, ["agent"])
    token = page_csrf(client, "/admin/faq")

    page = client.get("/admin/faq/unanswered").text
    dismiss = client.post("/admin/faq/unanswered/dismiss", data={"csrf_token": token, "question_ids": [1]})

    assert 'data-representative="有賣貓飼料嗎"' in page and "/admin/faq/unanswered/dismiss" not in page
    assert dismiss.status_code == 403


# --- the agents' inbox -------------------------------------------------------------------------

def test_the_conversation_list_filters_by_status(session):
    calm, angry = make_contact(session, display_name="平靜的客人"), make_contact(session, display_name="生氣的客人")
    customer_says(session, calm, "營業時間？")
    waiting, _ = customer_says(session, angry, "我要投訴")
    conversations.hand_off(session, conversation_id=waiting.id, reason="complaint")
    client = logged_in_client(session, ["agent"], lang="zh-TW")

    only_waiting = client.get("/admin/chat", params={"status": "waiting", "limit": 500}).text

    row = section(only_waiting, rf'<tr data-conversation="{waiting.id}"')
    assert "生氣的客人" in row and "等待真人" in row and "客訴或不滿" in row
    assert "平靜的客人" not in only_waiting
    assert f"{conversations.waiting_count(session)} 個對話等待真人客服" in only_waiting


def test_the_conversation_page_shows_who_said_what_with_the_matched_entry(session):
    make_retail_bank(session)
    contact = make_contact(session, display_name="王小姐")
    conversation, _ = customer_says(session, contact, "運費多少")
    conversations.add_message(session, conversation, direction=OUT, sender=BOT_SENDER, text="單筆訂單滿 NT$990 免運費",
                              entry_key="ship-fee", score=0.93, answered=True)
    customer_says(session, contact, "那退貨呢？我很生氣")
    conversations.add_message(session, conversation, direction=OUT, sender=BOT_SENDER, text="我不太確定…",
                              entry_key="return", score=0.31, answered=False)
    conversations.hand_off(session, conversation_id=conversation.id, reason="complaint")
    client = logged_in_client(session, ["agent"])

    page = client.get(f"/admin/chat/{conversation.id}").text
    fragment = client.get(f"/admin/chat/{conversation.id}/messages").text

    senders = re.findall(r'data-message="\d+" data-sender="(\w+)"', page)
    assert senders == ["customer", "bot", "customer", "bot", "system"]
    sure = section(page, r'<div class="msg bot" ')
    assert 'data-entry="ship-fee"' in sure and "data-score>0.93<" in sure
    unsure = section(page, r'<div class="msg bot unsure"')
    assert 'data-entry="return"' in unsure and "not sure" in unsure
    assert "王小姐" in page and 'action="/admin/chat/%d/take"' % conversation.id in page
    assert fragment.lstrip().startswith('<div class="chat-log"') and "<html" not in fragment
    assert re.findall(r'data-sender="(\w+)"', fragment) == senders


def test_take_reply_and_release_from_the_page(session, line_sandbox):
    contact = make_contact(session, display_name="林先生")
    conversation, row = customer_says(session, contact, "我要找真人")
    conversations.hand_off(session, conversation_id=conversation.id, reason="keyword")
    line_sandbox.register_reply_token(row.reply_token, contact.identities[0].external_id)
    client = logged_in_client(session, ["agent"])
    path = f"/admin/chat/{conversation.id}"
    token = page_csrf(client, path)

    taken = client.post(f"{path}/take", data={"csrf_token": token})
    assert taken.headers["location"] == f"{path}?done=taken"
    assert "the bot stays silent" in client.get(taken.headers["location"]).text
    sent = client.post(f"{path}/reply", data={"csrf_token": token, "text": "林先生您好，我是客服。"})
    assert sent.headers["location"] == f"{path}?done=sent"
    page = client.get(sent.headers["location"]).text
    agent = section(page, r'<div class="msg agent"')
    assert "林先生您好，我是客服。" in agent and 'data-delivery="reply_sent"' in agent
    user_id = contact.identities[0].external_id
    delivered = [m["messages"][0]["text"] for m in line_sandbox.messages() if user_id in m["to"]]
    assert delivered == ["林先生您好，我是客服。"]
    released = client.post(f"{path}/release", data={"csrf_token": token})

    assert released.headers["location"] == f"{path}?done=released"
    notes = [text_of(n) for n in re.findall(r'<span class="pill"[^>]*>(.*?)</span>', client.get(path).text, re.S)]
    assert notes[0].startswith("Handed to people: Asked for a person")
    assert notes[1].startswith("Taken by user:agent-") and notes[-1].startswith("Released to the bot (by an agent) by")
    session.refresh(conversation)
    assert conversation.status == "bot" and conversation.assignee_id is None


def test_a_reply_to_a_customer_who_objected_is_refused(session, no_line):
    contact = make_contact(session, consent_to={"service.chat": "object"})
    conversation, _ = customer_says(session, contact, "你好")
    client = logged_in_client(session, ["agent"])
    path = f"/admin/chat/{conversation.id}"
    page = client.get(path).text
    token = page_csrf(client, path)

    refused = client.post(f"{path}/reply", data={"csrf_token": token, "text": "您好"})

    assert 'data-role="no-chat"' in page and 'action="%s/reply"' % path not in page
    assert refused.status_code == 403 and "may not be messaged" in refused.text
    assert [m.sender for m in conversations.messages(session, conversation_id=conversation.id)] == ["customer"]


def test_editors_have_no_inbox(session):
    conversation, _ = customer_says(session, make_contact(session), "hi")
    client = logged_in_client(session, ["editor"])
    token = page_csrf(client, "/admin/faq")

    assert client.get("/admin/chat").status_code == 403
    assert client.get(f"/admin/chat/{conversation.id}").status_code == 403
    assert client.post(f"/admin/chat/{conversation.id}/take", data={"csrf_token": token}).status_code == 403


# --- the strings ------------------------------------------------------------------------------

def test_every_key_built_in_the_templates_exists():
    built = {f"faq.rate.{r}" for r in ("answered_correct", "answered_wrong_entry", "wrong", "in_scope_rejected",
                                        "rejected", "oos_rejected", "top1")}
    built |= {f"{key}.hint" for key in built}
    built |= {f"faq.field.{f}" for f in ("question", "answer", "category", "alt_questions", "generated_questions",
                                         "active")}
    built |= {f"faq.done.{d}" for d in ("created", "saved", "unchanged", "activated", "deactivated", "kept",
                                        "deleted")}
    built |= {f"unanswered.done.{d}" for d in ("new_entry", "alt_question", "dismissed")}
    built |= {f"chat.status.{s}{hint}" for s in conversations.STATUSES for hint in ("", ".hint")}
    built |= {f"chat.reason.{r}" for r in ("keyword", "complaint", "unsure", "agent", "idle")}
    built |= {f"chat.done.{d}" for d in ("taken", "released", "sent", "failed")}
    built |= {f"chat.delivery.{d}" for d in ("pending", "reply_sent", "push_sent", "push_pending", "failed", "unknown")}

    assert sorted(built - set(i18n.MESSAGES)) == []


def test_a_system_note_of_an_unknown_shape_is_shown_as_it_is():
    t = i18n.translator("zh-TW")

    assert system_note(t, "handed off: complaint") == "轉交真人客服：客訴或不滿"
    assert system_note(t, "released to the bot (idle) by system") == "交還機器人（閒置逾時），system"
    assert system_note(t, "something else happened") == "something else happened"
