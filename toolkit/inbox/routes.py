"""POST /line/webhook — the one hot path (STYLE.md rule 18).

LINE wants an answer within seconds and sends thousands of events a second at peak: the
request verifies the signature, stores its events with one INSERT ... ON CONFLICT DO
NOTHING, commits and answers. Everything else happens in the worker.

Uniformity yields here, on purpose:
- the app's request-context middleware hands this path straight to `webhook_asgi`, a bare
  ASGI function, before the session middleware, the router and FastAPI's request handling
  (the FastAPI route below stays for the OpenAPI document and shares `acknowledge`);
- on PostgreSQL the statement is the service's own `insert_statement`, compiled once per
  number of events and run at driver level on a psycopg_pool.AsyncConnectionPool of
  autocommit connections of this app (opened at the first webhook, in the running loop;
  closed with the app): one round trip, committed by the server before we answer.
  No ORM, no request Session, no SQLAlchemy engine: its pre-ping, BEGIN and COMMIT made
  four round trips of one, and its overflow connections were opened and closed per
  request under a burst. SQLite keeps the plain Session path, in a thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from psycopg import InterfaceError, OperationalError
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from toolkit import db
from toolkit.inbox import service
from toolkit.kit.clock import utcnow
from toolkit.kit.background import wake
from toolkit.line.webhook import InboundEvent, InvalidSignature, MalformedBody, parse, verify


@asynccontextmanager
async def _close_ack_pool(app: FastAPI) -> AsyncIterator[None]:
    # Merged into the app's lifespan by include_router: the pool goes when the app does.
    yield
    holder = getattr(app.state, "ack_pool", None)
    if holder is not None and holder.loop is asyncio.get_running_loop():
        await holder.close()


router = APIRouter(tags=["line"], lifespan=_close_ack_pool)

PATH = "/line/webhook"
PROCESS_LOOP = "inbox.process_events"
# LINE's bodies are small; anything far bigger is not from LINE and is refused unread.
MAX_BODY_BYTES = 2 * 1024 * 1024
# Connections of one web process for acknowledgements; further requests queue for the
# next free one. An insert holds one for about a millisecond: 10 took ~3,000 inserts/s here.
POOL_SIZE = 10
# Tries of one acknowledgement's insert when its connection turns out dead (see AckPool).
ACK_ATTEMPTS = 3
JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class ReplyTokenSink:
    """Where the reply tokens of arriving events must be known before we answer: the
    mounted LINE sandbox, so that the worker's replies are accepted there.

    `register` is called (in a thread) on SQLite; on PostgreSQL the tokens are upserted
    into `table` (token, user_id, expires_at) by the acknowledgement's own statement, so
    tokens and events commit together in the one round trip."""

    register: Callable[[list[InboundEvent]], None]
    table: Table | None = None
    ttl_s: float = 60.0


# --- the acknowledgement, shared by the ASGI fast path and the FastAPI route -----------------

def _error(message: str) -> bytes:
    # As JSONResponse renders it.
    return json.dumps({"detail": message, "code": "webhook_rejected"}, ensure_ascii=False,
                      separators=(",", ":")).encode()


async def acknowledge(state: Any, body: bytes, signature: str | None) -> tuple[int, bytes]:
    """(status, JSON body) for one webhook request whose body was read (up to the limit)."""
    if len(body) > MAX_BODY_BYTES:
        return 413, _error("body too large for a LINE webhook")
    try:
        verify(state.line_channel_secret, body, signature)
    except InvalidSignature as exc:
        return 401, _error(str(exc))
    try:
        _destination, events = parse(body)
    except MalformedBody as exc:
        return 400, _error(str(exc))
    if events:
        await _store(state, events)
        wake(PROCESS_LOOP)
    return 200, b"{}"


async def webhook_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /line/webhook as a bare ASGI function (see the module docstring)."""
    declared = signature = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = value
        elif name == b"x-line-signature":
            signature = value.decode("latin-1")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        status, payload = 413, _error("body too large for a LINE webhook")
    else:
        chunks: list[bytes] = []
        size, more = 0, True
        while more and size <= MAX_BODY_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        status, payload = await acknowledge(scope["app"].state, b"".join(chunks), signature)
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


@router.post(
    PATH,
    summary="LINE webhook (signed by LINE with the channel secret)",
    responses={400: {"description": "Malformed body"}, 401: {"description": "Bad signature"},
               413: {"description": "Body too large"}},
)
async def line_webhook(request: Request) -> Response:
    # Served by `webhook_asgi` in the app; this route documents it and serves any app
    # built without the request-context middleware.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        status, payload = 413, _error("body too large for a LINE webhook")
    else:
        status, payload = await acknowledge(request.app.state, await request.body(),
                                            request.headers.get("x-line-signature"))
    return Response(payload, status_code=status, media_type="application/json")


# --- storing -------------------------------------------------------------------------------

def _store_sync(events: list[InboundEvent]) -> None:
    with db.session_scope() as session:
        service.store_events(session.connection(), events)


async def _store(state: Any, events: list[InboundEvent]) -> None:
    sink: ReplyTokenSink | Callable[..., None] | None = getattr(state, "reply_token_sink", None)
    engine = db.get_async_engine()
    register = sink.register if isinstance(sink, ReplyTokenSink) else sink
    if engine is None:  # SQLite (and the tests' joined session): the sync engine, in a thread
        await run_in_threadpool(_store_sync, events)
        if register is not None:
            await run_in_threadpool(register, events)
        return
    now = utcnow()
    table = sink.table if isinstance(sink, ReplyTokenSink) else None
    tokens = _token_rows(events, now + timedelta(seconds=sink.ttl_s)) if table is not None else {}
    values: dict[str, Any] = {}
    for i, row in enumerate(service.event_rows(events, now)):
        row["body"] = Jsonb(row["body"])
        values.update({f"e{i}_{key}": value for key, value in row.items()})
    for i, (token, user_id, expires_at) in enumerate(tokens.values()):
        values.update({f"t{i}_token": token, f"t{i}_user_id": user_id, f"t{i}_expires_at": expires_at})
    sql, order = _insert_sql(len(events), len(tokens), table)
    holder = _ack_pool(state)
    async with holder.admission:
        pool = holder.pool or await holder.get(engine)
        await _execute(pool, sql, [values[name] for name in order])
    if register is not None and table is None:
        await run_in_threadpool(register, events)


async def _execute(pool: AsyncConnectionPool[Any], sql: str, params: list[Any]) -> None:
    """Run the acknowledgement's statement; on a dead connection, have the pool test its
    idle ones (dropping the dead, opening new ones) and try again. Safe to repeat: the
    statement is one autocommit INSERT ... ON CONFLICT DO NOTHING (and an upsert of tokens),
    done wholly or not at all."""
    for attempt in range(1, ACK_ATTEMPTS + 1):
        try:
            async with pool.connection() as connection:
                await connection.execute(sql, params)
            return
        except PoolTimeout:
            raise  # no connection could be made for the pool's timeout: trying again only waits again
        except (OperationalError, InterfaceError):
            # After a failover or pg_terminate_backend every idle connection is dead; without
            # the check each would fail one delivery before the pool replaced it.
            if attempt == ACK_ATTEMPTS:
                raise
            await pool.check()


def _token_rows(events: Sequence[InboundEvent], expires_at: datetime) -> dict[str, tuple[str, str, datetime]]:
    # One row per token: an upsert may not touch the same row twice in one statement.
    return {e.reply_token: (e.reply_token, e.user_id, expires_at) for e in events if e.reply_token and e.user_id}


@lru_cache(maxsize=128)
def _insert_sql(events: int, tokens: int, token_table: Table | None) -> tuple[str, tuple[str, ...]]:
    """The service's INSERT ... ON CONFLICT DO NOTHING for `events` rows (plus, for the
    sandbox, a data-modifying CTE upserting `tokens` reply tokens), as psycopg SQL with
    positional parameters, and the names of those parameters in order."""
    rows = [{key: bindparam(f"e{i}_{key}") for key in _event_columns()} for i in range(events)]
    statement = service.insert_statement("postgresql", rows)
    if token_table is not None and tokens:
        upsert = pg_insert(token_table).values([
            {column: bindparam(f"t{i}_{column}") for column in ("token", "user_id", "expires_at")}
            for i in range(tokens)
        ])
        upsert = upsert.on_conflict_do_update(
            index_elements=["token"],
            set_={"user_id": upsert.excluded.user_id, "expires_at": upsert.excluded.expires_at},
        )
        statement = statement.add_cte(upsert.cte("reply_tokens"))
    compiled = statement.compile(dialect=pg_psycopg.dialect(paramstyle="format"))
    assert compiled.positiontup is not None
    return compiled.string, tuple(compiled.positiontup)


@lru_cache(maxsize=1)
def _event_columns() -> tuple[str, ...]:
    sample = InboundEvent("x", "follow", None, None, "active", False, None, {})
    return tuple(service.event_rows([sample], utcnow())[0])


# --- connections ---------------------------------------------------------------------------

class AckPool:
    """The app's acknowledgement connections: a psycopg_pool.AsyncConnectionPool of
    autocommit connections, opened at the first webhook (an async pool belongs to the loop
    it was opened in, which does not run yet when the app is built) and closed with the app.
    No check on checkout, where it would add a round trip to every acknowledgement: a
    statement that fails on a dead connection has the pool check its idle connections and
    is tried again (`_execute`), so a dropped connection costs the one request a retry.

    Requests beyond the pool's size queue on `admission`, a plain semaphore, not in the pool:
    the pool's own queue waits with a timeout (a task and a timer per waiting request), which
    under a burst at concurrency 50 nearly doubled the p99 of an acknowledgement here."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pool: AsyncConnectionPool[Any] | None = None
        self.lock = asyncio.Lock()
        self.admission = asyncio.Semaphore(POOL_SIZE)

    async def get(self, engine: Any) -> AsyncConnectionPool[Any]:
        if self.pool is None:
            async with self.lock:  # the first requests of a burst wait for one pool
                if self.pool is None:
                    _args, kwargs = engine.dialect.create_connect_args(engine.url)
                    kwargs.pop("context", None)  # SQLAlchemy's adapters; we pass plain values
                    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                        kwargs={**kwargs, "autocommit": True}, min_size=POOL_SIZE, max_size=POOL_SIZE,
                        name="webhook-ack", open=False)
                    await pool.open(wait=False)
                    self.pool = pool
        return self.pool

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()


def _ack_pool(state: Any) -> AckPool:
    loop = asyncio.get_running_loop()
    holder = getattr(state, "ack_pool", None)
    # Not a coroutine, so two first requests cannot both create one. Another loop: an app
    # served again (tests); the old pool went with its loop.
    if holder is None or holder.loop is not loop:
        holder = state.ack_pool = AckPool(loop)
    return holder
