"""The worker's side of the inbox: handle, answer through LINE (the sandbox) by the
outbound pipeline, retry."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from tests.conftest import BACKENDS, IN_CI, drop_postgres_database, postgres_available, prepare, worker_suffix
from tests.inbox.factories import arrive, event, line_user_id
from tests.processes import fresh_database
from toolkit import db
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.inbox import handlers, jobs, service
from toolkit.inbox.service import events as events_service
from toolkit.kit import clock
from toolkit.inbox.handlers import Outcome
from toolkit.inbox.models import WebhookEvent
from toolkit.line.client import text_message
from toolkit.messaging import jobs as messaging_jobs
from toolkit.messaging import sender
from toolkit.messaging import service as messaging
from toolkit.messaging.models import OutboundMessage
from toolkit.settings import get_settings


def run_worker(session) -> None:
    while jobs.process_events() + messaging_jobs.send_due():
        pass
    session.expire_all()


def outbound_of(session, row) -> OutboundMessage:
    (message,) = messaging.of_source(session, service.REPLY_SOURCE, row.id)
    return message


def lease_runs_out(session, row) -> None:
    message = outbound_of(session, row)
    message.locked_until = message.created_at
    session.flush()


def sent(line_sandbox, user):
    return [m for m in line_sandbox.messages() if user in m["to"] and m["accepted"]]


def test_a_follow_is_welcomed_once_by_reply(session, line_sandbox):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("follow", user))

    run_worker(session)

    (welcome,) = sent(line_sandbox, user)
    assert welcome["endpoint"] == "reply" and "取消訂閱" in welcome["messages"][0]["text"]
    assert row.status == "done" and row.delivery == "reply_sent"
    contact = contacts.require_by_external_id(session, user)
    assert contact.display_name.startswith("Sandbox user")  # from LINE's profile API


def test_opt_out_is_confirmed_once_and_excludes_marketing(session, line_sandbox):
    user = line_user_id()
    arrive(session, line_sandbox, event("follow", user), event("message", user, text="取消訂閱"))

    run_worker(session)

    welcome, confirmation = sent(line_sandbox, user)
    assert "訂閱" in confirmation["messages"][0]["text"]
    contact = contacts.require_by_external_id(session, user)
    assert consent.allowed(session, [contact.id], purpose="marketing.line_push", channel="line") == set()


def test_redelivered_and_duplicated_events_produce_exactly_one_reply(session, line_sandbox):
    user = line_user_id()
    follow = event("follow", user)
    arrive(session, line_sandbox, follow)
    run_worker(session)
    arrive(session, line_sandbox, {**follow, "deliveryContext": {"isRedelivery": True}}, follow)

    run_worker(session)

    assert len(sent(line_sandbox, user)) == 1


def test_an_expired_reply_token_falls_back_to_push_with_a_retry_key(session, line_sandbox):
    user = line_user_id()
    arrive(session, line_sandbox, event("follow", user), valid_tokens=False)

    run_worker(session)

    (welcome,) = sent(line_sandbox, user)
    assert welcome["endpoint"] == "push" and welcome["retry_key"]


def test_line_down_retries_the_push_with_the_same_key_and_sends_once(session, line_sandbox):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("follow", user), valid_tokens=False)
    line_sandbox.set_faults({"accept_then_500": 1.0})
    run_worker(session)
    assert row.status == "done" and row.delivery == "push_pending"  # its message is retried later
    message = outbound_of(session, row)
    assert (message.state, message.attempts) == ("queued", 1) and message.next_attempt_at > message.created_at

    line_sandbox.set_faults({})
    message.next_attempt_at = message.created_at
    session.flush()
    run_worker(session)

    pushes = [m for m in line_sandbox.messages() if user in m["to"]]
    assert [m["status"] for m in pushes] == [500, 409]
    assert len({m["retry_key"] for m in pushes}) == 1
    assert row.status == "done" and row.delivery == "push_sent"


def test_a_crash_mid_reply_never_leads_to_a_second_message(session, line_sandbox):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("follow", user))
    row.handled_at = row.received_at
    row.replies = {"purpose": "service.chat", "messages": [text_message("hi")]}
    row.delivery = "reply_pending"  # as a worker killed after sending leaves it
    session.flush()

    run_worker(session)

    assert sent(line_sandbox, user) == []
    assert row.status == "done" and row.delivery == "unknown"


def test_other_text_goes_to_the_registered_text_handler(session, line_sandbox):
    user = line_user_id()
    arrive(session, line_sandbox, event("message", user, text="營業時間？"))
    handlers.register_text_handler(lambda s, ctx: Outcome("answered", [text_message(f"you said {ctx.text}")]))
    try:
        run_worker(session)
    finally:
        handlers.register_text_handler(None)

    (answer,) = sent(line_sandbox, user)
    assert answer["messages"][0]["text"] == "you said 營業時間？"


def test_a_handler_that_raises_is_retried_not_dropped(session, line_sandbox):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("message", user, text="boom"))

    def broken(s, ctx):
        raise RuntimeError("handler exploded")

    handlers.register_text_handler(broken)
    try:
        run_worker(session)
    finally:
        handlers.register_text_handler(None)

    assert row.status == "pending" and row.attempts == 1 and "handler exploded" in row.last_error
    assert row.next_attempt_at > row.received_at


def test_events_of_other_types_are_marked_ignored(session, line_sandbox):
    beacon = {**event("follow", line_user_id()), "type": "beacon"}
    (row,) = arrive(session, line_sandbox, beacon)

    run_worker(session)

    assert session.scalar(select(WebhookEvent.status).where(WebhookEvent.id == row.id)) == "ignored"
    assert service.count_by_status(session).get("ignored", 0) >= 1


# --- batches: one transaction, a SAVEPOINT per event, concurrent sends ------------------------

def answer_every_text(s, ctx):
    return Outcome("answered", [text_message(f"you said {ctx.text}")], ctx.contact.id)


@pytest.fixture
def echo_handler():
    previous = handlers.current_text_handler()
    handlers.register_text_handler(answer_every_text)
    yield
    handlers.register_text_handler(previous)


def test_one_poisoned_event_fails_alone_and_the_rest_of_its_batch_is_done(session, line_sandbox):
    users = [line_user_id() for _ in range(3)]
    for user in users:
        contacts.upsert_identity(session, external_id=user)
    rows = arrive(session, line_sandbox, *(event("message", u, text=t) for u, t in zip(users, ["hi", "boom", "yo"])))

    def poisoned(s, ctx):
        if ctx.text == "boom":  # writes, then fails: its savepoint must take the write back
            consent.withdraw(s, contact_id=ctx.contact.id, purpose="service.chat", source="keyword")
            raise RuntimeError("handler exploded")
        return answer_every_text(s, ctx)

    previous = handlers.current_text_handler()
    handlers.register_text_handler(poisoned)
    try:
        assert jobs.process_events() == 3  # one batch
    finally:
        handlers.register_text_handler(previous)
    session.expire_all()

    ok, bad, ok_too = rows
    assert (ok.status, ok.delivery, ok_too.status, ok_too.delivery) == ("done", "reply_sent", "done", "reply_sent")
    assert bad.status == "pending" and bad.attempts == 1 and "handler exploded" in bad.last_error
    assert bad.handled_at is None and bad.delivery is None
    assert consent.status(session, contact_id=contacts.require_by_external_id(session, users[1]).id)[
        "service.chat"]["state"] != "withdrawn"
    assert [len(sent(line_sandbox, u)) for u in users] == [1, 0, 1]


def test_each_users_replies_go_out_in_the_order_their_events_arrived(session, line_sandbox, echo_handler, monkeypatch):
    users = [line_user_id() for _ in range(4)]
    texts = {u: [f"{u[-4:]} #{n}" for n in range(5)] for u in users}
    arrive(session, line_sandbox, *(event("message", u, text=texts[u][n]) for n in range(5) for u in users))
    line_sandbox.set_faults({"latency_ms": 30})  # sends overlap only if they run side by side
    in_flight, most = 0, 0
    lock = threading.Lock()
    real_deliver = sender.deliver

    def counting_deliver(client, row):
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            return real_deliver(client, row)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(sender, "deliver", counting_deliver)

    run_worker(session)

    assert most > 1  # several users at once
    for user in users:
        assert [m["messages"][0]["text"] for m in sent(line_sandbox, user)] == [f"you said {t}" for t in texts[user]]


def test_concurrent_sends_give_exactly_one_reply_per_event(session, line_sandbox, echo_handler):
    users = [line_user_id() for _ in range(12)]
    rows = arrive(session, line_sandbox, *(event("message", u, text=f"{u} {n}") for n in range(3) for u in users))
    line_sandbox.set_faults({"latency_ms": 5})

    run_worker(session)

    texts = [m["messages"][0]["text"] for m in line_sandbox.messages() if m["accepted"]]
    assert sorted(texts) == sorted(f"you said {u} {n}" for n in range(3) for u in users)
    assert {(r.status, r.delivery) for r in rows} == {("done", "reply_sent")}


def test_an_event_without_a_reply_keeps_sql_null_in_replies(session, line_sandbox):
    # The batch writes only the columns that changed: a None written to the JSON column
    # would store JSON null, which `replies IS NULL` does not find.
    (row,) = arrive(session, line_sandbox, event("message", line_user_id(), text="no handler, no answer"))

    run_worker(session)

    assert row.status == "done"
    assert session.scalar(select(func.count()).select_from(WebhookEvent)
                          .where(WebhookEvent.id == row.id, WebhookEvent.replies.is_(None))) == 1


def test_a_worker_killed_after_sending_never_sends_again(session, line_sandbox, echo_handler, monkeypatch):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("message", user, text="once"))

    def killed(*args, **kwargs):
        raise SystemExit("worker killed before it recorded the send")

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(messaging, "record", killed)
        jobs.process_events()
    session.expire_all()
    assert (row.status, row.delivery) == ("done", "reply_pending")  # committed before sending
    assert outbound_of(session, row).state == "sending"
    assert len(sent(line_sandbox, user)) == 1
    lease_runs_out(session, row)

    run_worker(session)

    # The retry tried the reply token once more; LINE refused it as used, so no push either.
    assert len(sent(line_sandbox, user)) == 1
    assert (row.status, row.delivery) == ("done", "unknown") and "not pushed" in row.last_error
    assert [m["endpoint"] for m in line_sandbox.messages() if user in m["to"]] == ["reply"]


def test_a_worker_killed_before_sending_answers_once_when_its_lease_runs_out(session, line_sandbox, echo_handler,
                                                                            monkeypatch):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("message", user, text="maybe"))

    def killed(*args, **kwargs):
        raise SystemExit("worker killed before it sent anything")

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(sender, "attempt", killed)
        jobs.process_events()
    session.expire_all()
    assert sent(line_sandbox, user) == []
    run_worker(session)
    assert sent(line_sandbox, user) == []  # leased: nobody else sends it before the lease runs out
    lease_runs_out(session, row)

    run_worker(session)

    (answer,) = sent(line_sandbox, user)
    assert answer["endpoint"] == "reply" and answer["messages"][0]["text"] == "you said maybe"
    assert (row.status, row.delivery) == ("done", "reply_sent")


def test_an_objection_anywhere_in_the_batch_withholds_its_replies(session, line_sandbox, echo_handler):
    user = line_user_id()
    contact = contacts.upsert_identity(session, external_id=user).contact

    def object_to_everything(s, found, data, ev):
        consent.object_to(s, contact_id=found.id, purpose="service.chat", source="admin")
        return Outcome("objected", [text_message("noted")], found.id)

    handlers.register_postback_handler("object", object_to_everything)
    try:
        rows = arrive(session, line_sandbox, event("message", user, text="hello"),
                      event("postback", user, data="object"))
        run_worker(session)
    finally:
        handlers._postback_handlers.pop("object", None)

    assert sent(line_sandbox, user) == []
    assert all(r.status == "done" and r.replies is None and "withheld by the consent gate" in r.outcome for r in rows)
    assert contact.id not in consent.allowed(session, [contact.id], purpose="service.chat", channel="line")


def test_without_a_channel_the_event_is_handled_and_only_its_reply_waits(session, line_sandbox, monkeypatch):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("follow", user))
    sandbox_url = get_settings().line_api_base
    for name in ("TOOLKIT_LINE_API_BASE", "TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN", "TOOLKIT_LINE_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()

    run_worker(session)

    assert row.status == "done" and row.handled_at is not None and row.delivery == "reply_pending"
    assert row.last_error is not None and "TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN" in row.last_error
    assert contacts.get_by_external_id(session, user) is not None  # the follow itself stands
    message = outbound_of(session, row)
    assert message.state == "queued" and message.reply_token  # kept for the retry
    monkeypatch.setenv("TOOLKIT_LINE_API_BASE", sandbox_url)
    get_settings.cache_clear()
    message.next_attempt_at = message.created_at
    session.flush()

    run_worker(session)

    assert len(sent(line_sandbox, user)) == 1 and (row.status, row.delivery) == ("done", "reply_sent")


def test_a_claim_is_split_by_user_never_splitting_one_users_events():
    claimed = [service.ClaimedEvent(i, "message", f"U{i % 5}" if i % 7 else None, False) for i in range(1, 41)]

    parts = jobs.split_by_user(claimed, 2)

    assert len(parts) == 2 and sorted(e.id for p in parts for e in p) == list(range(1, 41))
    assert abs(len(parts[0]) - len(parts[1])) <= 8
    for part in parts:
        assert [e.id for e in part] == sorted(e.id for e in part)
    homes = {e.user_id: {i for i, p in enumerate(parts) if e in p} for e in claimed if e.user_id}
    assert all(len(h) == 1 for h in homes.values())
    assert jobs.split_by_user(claimed[:1], 2) == [claimed[:1]]


# --- lanes: real transactions, no joined test session ----------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def committing_engine(request, tmp_path_factory):
    """A migrated database of its own, whose commits are real: the worker's lanes need a
    connection each, which the rolled-back test session (one connection) cannot give."""
    if request.param == "postgresql" and postgres_available() is not None:
        if IN_CI:
            pytest.fail("PostgreSQL is required under CI=true")
        pytest.skip("PostgreSQL is not available (set CI=true to make this a failure)")
    name = f"toolkit_lanes_{worker_suffix()}"
    engine = db.make_engine(fresh_database(request.param, tmp_path_factory.mktemp("lanes"), name))
    prepare(engine)
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        drop_postgres_database(name)


def test_lanes_handle_a_claim_side_by_side_and_keep_each_user_in_order(committing_engine, line_sandbox,
                                                                        echo_handler, monkeypatch):
    factory = sessionmaker(bind=committing_engine, expire_on_commit=False)
    monkeypatch.setattr(db, "get_sessionmaker", lambda: factory)
    monkeypatch.setattr(db, "get_engine", lambda: committing_engine)
    users = [line_user_id() for _ in range(6)]
    texts = {u: [f"{u[-4:]} #{n}" for n in range(4)] for u in users}
    with db.session_scope() as session:
        rows = arrive(session, line_sandbox, *(event("message", u, text=texts[u][n]) for n in range(4) for u in users))
        ids = [r.id for r in rows]
    lanes: list[set[str]] = []  # the users of each handling transaction
    real_handle_batch = service.handle_batch

    def watched(session, *, event_ids, **kwargs):
        lanes.append(set(session.scalars(select(WebhookEvent.user_id).where(WebhookEvent.id.in_(event_ids)))))
        return real_handle_batch(session, event_ids=event_ids, **kwargs)

    monkeypatch.setattr(service, "handle_batch", watched)

    assert jobs.process_events() == len(ids)  # one claim

    expected = 2 if committing_engine.dialect.name == "postgresql" else 1
    assert len(lanes) == expected
    assert sum(len(u) for u in lanes) == len(set().union(*lanes)) == len(users)  # each user in one lane
    with db.session_scope() as session:
        done = session.execute(select(WebhookEvent.status, WebhookEvent.delivery)
                               .where(WebhookEvent.id.in_(ids))).all()
    assert set(done) == {("done", "reply_sent")}
    for user in users:
        assert [m["messages"][0]["text"] for m in sent(line_sandbox, user)] == [f"you said {t}" for t in texts[user]]


def test_a_backlog_is_sent_in_the_background_in_each_users_order(committing_engine, line_sandbox, echo_handler,
                                                                  monkeypatch):
    """Full claims hand their replies to the background sender and go on; a user's replies still leave
    in order across batches, and when process_events() says the inbox is empty nothing is
    left in flight."""
    factory = sessionmaker(bind=committing_engine, expire_on_commit=False)
    monkeypatch.setattr(db, "get_sessionmaker", lambda: factory)
    monkeypatch.setattr(db, "get_engine", lambda: committing_engine)
    monkeypatch.setattr(jobs, "BATCH", 4)  # 6 users x 5 messages: several full claims
    line_sandbox.set_faults({"latency_ms": 20})  # slow enough for batches to overlap
    users = [line_user_id() for _ in range(6)]
    texts = {u: [f"{u[-4:]} #{n}" for n in range(5)] for u in users}
    with db.session_scope() as session:
        rows = arrive(session, line_sandbox, *(event("message", u, text=texts[u][n]) for n in range(5) for u in users))
        ids = [r.id for r in rows]
    handed_over = []
    real_submit = sender.Sender.submit

    def counted(self, client, replies):
        handed_over.append(len(replies))
        return real_submit(self, client, replies)

    monkeypatch.setattr(sender.Sender, "submit", counted)

    claims = []
    while claimed := jobs.process_events():
        claims.append(claimed)

    assert sum(claims) == len(ids)
    with db.session_scope() as session:
        done = session.execute(select(WebhookEvent.status, WebhookEvent.delivery)
                               .where(WebhookEvent.id.in_(ids))).all()
    assert set(done) == {("done", "reply_sent")}  # all recorded by the time the loop stopped
    for user in users:
        assert [m["messages"][0]["text"] for m in sent(line_sandbox, user)] == [f"you said {t}" for t in texts[user]]
    if committing_engine.dialect.name == "postgresql":
        assert sum(handed_over) == len(ids)  # every reply went through the background sender
    else:
        assert handed_over == []  # SQLite: one writer, sent in line


def test_a_batch_still_being_handled_keeps_its_lease_so_no_other_worker_takes_it(committing_engine, line_sandbox,
                                                                                 monkeypatch):
    if committing_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: no second worker claims while a batch is handled")
    factory = sessionmaker(bind=committing_engine, expire_on_commit=False)
    monkeypatch.setattr(db, "get_sessionmaker", lambda: factory)
    monkeypatch.setattr(db, "get_engine", lambda: committing_engine)
    for module in (service, events_service):
        monkeypatch.setattr(module, "LEASE", timedelta(seconds=3))  # renewed every second
    user = line_user_id()
    with db.session_scope() as session:
        (row,) = arrive(session, line_sandbox, event("message", user, text="slow"))
    taken_over = []

    def slow_handler(s, ctx):
        # Later than the lease would last without renewals; then wait for one.
        with clock.moved(timedelta(seconds=10)):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with db.session_scope() as other:
                    locked_until = other.get(WebhookEvent, row.id).locked_until
                if locked_until > clock.utcnow():
                    break
                time.sleep(0.05)
            with db.session_scope() as other:
                taken_over.extend(service.claim(other, limit=10))
        return Outcome("answered", [text_message("done")], ctx.contact.id)

    previous = handlers.current_text_handler()
    handlers.register_text_handler(slow_handler)
    try:
        assert jobs.process_events() == 1
    finally:
        handlers.register_text_handler(previous)

    assert taken_over == []
    assert len(sent(line_sandbox, user)) == 1
