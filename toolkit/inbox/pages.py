"""Admin pages for LINE: the webhook inbox (with dead-letter retry), the message quota, and
the chat simulator that talks to our real webhook through the LINE sandbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from toolkit.auth.deps import page_permission
from toolkit.auth.service import Actor
from toolkit.inbox import quota, service, simulator
from toolkit.kit.deps import IdPath, PageDep, SessionDep
from toolkit.line.limits import USER_ID
from toolkit.settings import get_settings
from toolkit.web.csrf import verify_csrf
from toolkit.web.templating import render
from toolkit.kit.storable import CleanText

pages = APIRouter(include_in_schema=False)

InboxReader = Annotated[Actor, Depends(page_permission("line.inbox"))]


def released(permission: str) -> Callable[..., Actor]:
    """The permission check, then the end of the transaction it opened, for routes that call
    our own server over HTTP (LINE's API in the sandbox, our webhook). On SQLite every
    transaction takes the write lock (BEGIN IMMEDIATE, toolkit.db), so holding one across
    such a call would make the sandbox or the webhook wait for it until the call times out;
    on PostgreSQL it would sit idle in transaction."""

    # A default, not Annotated[...]: with postponed annotations FastAPI could not see `permission`.
    def check(session: SessionDep, actor: Actor = Depends(page_permission(permission))) -> Actor:
        session.commit()  # nothing was written: this only ends the read
        return actor

    return check


QuotaReader = Annotated[Actor, Depends(released("line.inbox"))]
Simulator = Annotated[Actor, Depends(released("line.simulate"))]
Status = Literal["pending", "processing", "done", "ignored", "dead", "refused"]
UserId = Annotated[str, Query(max_length=33)]


@pages.get("/admin/line/events")
def event_list(
    request: Request,
    session: SessionDep,
    _actor: InboxReader,
    page: PageDep,
    status: Status | None = None,
    done: Literal["retried"] | None = None,
) -> Response:
    events = service.event_page(session, status=status, limit=page.limit, offset=page.offset)
    context = {"events": events, "status": status, "page": page, "done": done, "tz": get_settings().timezone}
    return render(request, "inbox/events.html", context)


@pages.post("/admin/line/events/{event_id}/retry", dependencies=[Depends(verify_csrf)])
def retry_event(
    session: SessionDep,
    actor: InboxReader,
    event_id: IdPath,
    status: Annotated[Status | None, Form()] = None,
) -> RedirectResponse:
    service.retry_dead(session, event_id=event_id, actor=actor.audit_name)
    back = f"status={status}&" if status else ""  # back to the list the button was on
    return RedirectResponse(f"/admin/line/events?{back}done=retried", status_code=303)


@pages.get("/admin/line/quota")
def quota_page(request: Request, _actor: QuotaReader) -> Response:
    context = {"report": quota.check_quota(), "warn_percent": int(quota.WARN_SHARE * 100)}
    return render(request, "inbox/quota.html", context)


@pages.get("/admin/line/simulator")
def simulator_page(request: Request, session: SessionDep, _actor: Simulator, user: UserId = "") -> Response:
    context = {
        "enabled": get_settings().line_sandbox,
        "user_id": user if simulator.is_user_id(user) else simulator.new_user_id(),
        "recent": service.recent_users(session, limit=20),
    }
    return render(request, "inbox/simulator.html", context)


@pages.post("/admin/line/simulator/events", dependencies=[Depends(verify_csrf)])
def simulate_event(
    request: Request,
    _actor: Simulator,
    kind: Annotated[simulator.EventKind, Form()],
    user_id: Annotated[str, Form(pattern=f"^{USER_ID.pattern}$")],
    text: Annotated[CleanText, Form(max_length=simulator.MAX_TEXT)] = "",
) -> dict[str, Any]:
    sent = simulator.send_event(get_settings(), channel_secret=request.app.state.line_channel_secret,
                                kind=kind, user_id=user_id, text=text or None)
    return asdict(sent)


@pages.get("/admin/line/simulator/conversation")
def simulator_conversation(session: SessionDep, _actor: Simulator, user_id: UserId) -> dict[str, Any]:
    return asdict(simulator.conversation(session, get_settings(), user_id=user_id))
