"""Inbox: what each LINE event does to contacts and consent, and what we plan to answer."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.inbox.factories import event, line_user_id, store
from toolkit import defaults
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.inbox import service
from toolkit.inbox.models import WebhookEvent
from toolkit.kit.clock import utcnow

PUSH = "marketing.line_push"
CONFIG = service.load_channel_config(defaults.path("line.yaml"))


def handle(session, *events):
    rows = store(session, *events)
    return [service.handle(session, event_id=row.id, config=CONFIG) for row in rows]


def marketing_allowed(session, user_id):
    contact = contacts.require_by_external_id(session, user_id)
    return contact.id in consent.allowed(session, [contact.id], purpose=PUSH, channel="line")


def test_follow_creates_the_contact_grants_marketing_and_plans_a_welcome(session):
    user = line_user_id()

    (row,) = handle(session, event("follow", user))

    contact = contacts.require_by_external_id(session, user)
    status = consent.status(session, contact_id=contact.id)
    assert status[PUSH]["state"] == "granted" and status[PUSH]["notice_version"] == "2026-01"
    assert status["marketing.profiling"]["state"] == "none"  # never granted by a follow
    (welcome,) = row.replies["messages"]
    assert "取消訂閱" in welcome["text"] and "2026-01" in welcome["text"]
    assert row.replies["purpose"] == "service.chat"
    (grant, _), = consent.history(session, contact_id=contact.id)[0]
    assert grant.source == "follow" and grant.evidence["webhook_event_id"] == row.webhook_event_id


@pytest.mark.parametrize("keyword", ["取消訂閱", "退訂", "停止訂閱", "STOP", "unsubscribe", " ＳＴＯＰ！", "取消订阅"])
def test_opt_out_keywords_withdraw_marketing_and_confirm(session, keyword):
    user = line_user_id()
    handle(session, event("follow", user))

    (row,) = handle(session, event("message", user, text=keyword))

    assert not marketing_allowed(session, user)
    assert "訂閱" in row.replies["messages"][0]["text"]  # says how to subscribe again
    assert row.outcome.startswith("opt-out")


def test_an_opt_out_word_inside_a_sentence_is_not_an_opt_out(session):
    user = line_user_id()
    handle(session, event("follow", user))

    (row,) = handle(session, event("message", user, text="我想退訂這筆訂單"))

    assert marketing_allowed(session, user)
    assert row.replies is None  # no text handler installed yet: no answer


def test_refollow_does_not_quietly_grant_back_but_the_opt_in_keyword_does(session):
    user = line_user_id()
    handle(session, event("follow", user), event("message", user, text="取消訂閱"))

    handle(session, event("unfollow", user), event("follow", user))
    assert not marketing_allowed(session, user)

    (row,) = handle(session, event("message", user, text="訂閱"))
    assert marketing_allowed(session, user)
    contact = contacts.require_by_external_id(session, user)
    (latest, _), = consent.history(session, contact_id=contact.id, limit=1)[0]
    assert latest.source == "keyword" and latest.evidence["text"] == "訂閱"
    assert latest.notice_version == "2026-01"


def test_unfollow_blocks_and_withdraws_every_marketing_purpose(session):
    user = line_user_id()
    handle(session, event("follow", user))
    contact = contacts.require_by_external_id(session, user)
    consent.grant(session, contact_id=contact.id, purpose="marketing.profiling", source="form")

    (row,) = handle(session, event("unfollow", user))

    status = consent.status(session, contact_id=contact.id)
    assert status[PUSH]["state"] == status["marketing.profiling"]["state"] == "withdrawn"
    assert contact.identities[0].blocked_at is not None
    assert consent.allowed(session, [contact.id], purpose="service.chat", channel="line") == set()
    assert row.replies is None


def test_a_suppressed_identity_is_not_re_added_by_a_follow(session):
    user = line_user_id()
    consent.suppress(session, identities=[("line", user)], reason="erasure")

    (row,) = handle(session, event("follow", user))

    assert contacts.get_by_external_id(session, user) is None
    assert row.replies is None and "suppressed" in row.outcome


def test_standby_mode_never_plans_a_reply(session):
    user = line_user_id()

    (row,) = handle(session, event("follow", user, mode="standby"))

    assert row.replies is None and row.delivery == "suppressed"


def test_the_same_event_twice_is_stored_once(session):
    user = line_user_id()
    follow = event("follow", user)

    first = store(session, follow)
    again = store(session, {**follow, "deliveryContext": {"isRedelivery": True}})

    assert [r.id for r in first] == [r.id for r in again]
    assert again[0].is_redelivery is False  # the first arrival is what we keep


def test_claim_leases_due_events_and_skips_leased_ones(session):
    rows = store(session, event("follow", line_user_id()), event("follow", line_user_id()))
    ids = {r.id for r in rows}

    first = set(service.claim(session, limit=100))
    second = set(service.claim(session, limit=100))
    later = set(service.claim(session, limit=100, now=utcnow() + timedelta(minutes=5)))

    assert ids <= first and not (ids & second)
    assert ids <= later  # an expired lease (a killed worker) is claimable again


def test_failures_back_off_then_end_in_the_dead_letter_state(session):
    (row,) = store(session, event("follow", line_user_id()))
    for attempt in range(1, service.MAX_ATTEMPTS + 1):
        claimed = service.claim(session, limit=100, now=utcnow() + timedelta(days=attempt))
        assert row.id in claimed
        service.fail(session, event_id=row.id, error="boom", now=utcnow() + timedelta(days=attempt))

    session.refresh(row)
    assert row.status == "dead" and row.last_error == "boom"
    service.retry_dead(session, event_id=row.id, actor="user:ops@test")
    assert row.status == "pending" and row.attempts == 0


def test_old_handled_events_are_purged_but_pending_ones_stay(session):
    done, pending = store(session, event("follow", line_user_id()), event("follow", line_user_id()))
    done.status = "done"
    session.flush()

    purged = service.purge_handled(session, older_than_days=30, now=utcnow() + timedelta(days=31))

    assert purged >= 1
    assert service.get(session, pending.id) is not None


def test_no_reply_to_someone_who_objected_to_service_messages(session):
    """Every answer asks the gate (service.chat): an objection silences the bot."""
    user = line_user_id()
    handle(session, event("follow", user))
    contact = contacts.require_by_external_id(session, user)
    consent.object_to(session, contact_id=contact.id, purpose="service.chat", source="admin")

    (row,) = handle(session, event("message", user, text="取消訂閱"))

    assert not marketing_allowed(session, user)  # the opt-out itself still takes effect
    assert row.replies is None


def test_the_channel_config_is_cached_and_read_again_when_the_file_changes(tmp_path):
    path = tmp_path / "line.yaml"
    text = defaults.path("line.yaml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")

    def touch_later() -> None:  # a second on, whatever the file system's clock resolution
        mtime = path.stat().st_mtime_ns + 1_000_000_000
        os.utime(path, ns=(mtime, mtime))

    first = service.load_channel_config(path)
    assert service.load_channel_config(path) is first  # not parsed again
    path.write_text(text.replace("好日子選物", "新名字"), encoding="utf-8")
    touch_later()
    second = service.load_channel_config(path)
    assert second is not first and second.brand_name.pick("zh-TW") == "新名字"
    path.write_text("brand_name: [", encoding="utf-8")
    touch_later()
    with pytest.raises(service.ChannelConfigError):
        service.load_channel_config(path)
    with pytest.raises(service.ChannelConfigError):
        service.load_channel_config(tmp_path / "missing.yaml")


def test_erasure_blanks_the_persons_events_and_never_handles_the_rest(session):
    user, other = line_user_id(), line_user_id()
    handled = handle(session, event("follow", user), event("message", user, text="我住在信義路五段7號"))
    for row in handled:
        service.finish(session, event_id=row.id)  # as the worker ends them once the reply went
    pending, dead = store(session, event("message", user, text="還在嗎"), event("message", user, text="喂"))
    dead.status = service.DEAD
    (kept,) = handle(session, event("message", other, text="運費多少"))
    ended = [(row.status, row.outcome) for row in handled]

    contacts.erase(session, contact_id=contacts.require_by_external_id(session, user).id, actor="privacy")
    session.expire_all()

    ids = [row.id for row in (*handled, pending, dead)]
    rows = session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(ids)).order_by(WebhookEvent.id)).all()
    assert [(r.event_type, r.user_id, r.reply_token, r.body, r.replies, r.last_error) for r in rows] == [
        (kind, None, None, {}, None, None) for kind in ("follow", "message", "message", "message")]
    assert [(r.status, r.outcome) for r in rows[2:]] == [(service.IGNORED, service.ERASED)] * 2
    assert [(r.status, r.outcome) for r in rows[:2]] == ended  # how they ended stays
    assert rows[0].webhook_event_id == handled[0].webhook_event_id
    assert kept.user_id == other and kept.body["message"]["text"] == "運費多少"
