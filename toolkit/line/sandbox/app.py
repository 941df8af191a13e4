"""The sandbox's HTTP face: LINE's paths at the root, plus /_faults, /_messages and
/_reply_tokens (one, or /_reply_tokens/batch for many) for tests, benchmarks and the chat
simulator. Mounted at /sandbox/line by `toolkit serve`, or served alone by `toolkit line
sandbox`.

Routes are async so that an injected hang or latency costs no thread; the store calls
they make (which may block on the database) run in the thread pool.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolkit.line.limits import MAX_REQUEST_BYTES
from toolkit.line.sandbox import rules
from toolkit.line.sandbox.faults import FaultPlanError
from toolkit.line.sandbox.rules import Answer, LineError
from toolkit.line.sandbox.service import Sandbox, SandboxConfig, set_serving
from toolkit.line.sandbox.store import SandboxStore

REQUEST_ID = "x-line-request-id"


class RequestIdMiddleware:
    """Every response carries x-line-request-id, as LINE's do (errors and 404s too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope[REQUEST_ID] = str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID, request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


def _authorized(request: Request) -> Sandbox:
    if rules.bearer_token(request.headers.get("authorization")) is None:
        raise LineError(401, rules.error(rules.AUTH_FAILED))
    return request.app.state.sandbox


Channel = Annotated[Sandbox, Depends(_authorized)]  # LINE's endpoints: a bearer token needed
Tooling = Annotated[Sandbox, Depends(_sandbox)]  # the sandbox's own endpoints: open


async def _read_capped(request: Request) -> bytes | None:
    """The body, or None past LINE's 2 MB (read to the end all the same, so that the
    connection stays usable for the 413)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_REQUEST_BYTES:
            chunks.append(chunk)
    return b"".join(chunks) if size <= MAX_REQUEST_BYTES else None


async def _json(request: Request) -> Any:
    return rules.parse_object(await request.body())


async def _answer(answer: Answer) -> JSONResponse:
    if answer.wait_s > 0:
        await asyncio.sleep(answer.wait_s)
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def _send_route(endpoint: str) -> Any:
    async def send_message(request: Request, sandbox: Tooling) -> JSONResponse:
        body = await _read_capped(request)
        answer = await run_in_threadpool(
            sandbox.send, endpoint, body=body, authorization=request.headers.get("authorization"),
            retry_key=request.headers.get(rules.RETRY_KEY_HEADER), request_id=request.scope[REQUEST_ID],
        )
        return await _answer(answer)

    send_message.__name__ = f"send_{endpoint}"
    return send_message


router = APIRouter(include_in_schema=False)
for _endpoint in rules.SEND_ENDPOINTS:
    router.add_api_route(f"/v2/bot/message/{_endpoint}", _send_route(_endpoint), methods=["POST"])


@router.get("/v2/bot/profile/{user_id}")
def get_profile(user_id: str, sandbox: Channel) -> dict[str, Any]:
    return sandbox.profile(user_id)


@router.get("/v2/bot/message/quota")
def get_quota(sandbox: Channel) -> dict[str, Any]:
    return sandbox.quota()


@router.get("/v2/bot/message/quota/consumption")
def get_consumption(sandbox: Channel) -> dict[str, Any]:
    return sandbox.consumption()


@router.get("/v2/bot/info")
def get_bot_info(sandbox: Channel) -> dict[str, Any]:
    return sandbox.bot_info()


@router.get("/v2/bot/channel/webhook/endpoint")
def get_webhook_endpoint(sandbox: Channel) -> dict[str, Any]:
    return sandbox.webhook_endpoint()


@router.put("/v2/bot/channel/webhook/endpoint")
async def set_webhook_endpoint(request: Request, sandbox: Channel) -> dict[str, Any]:
    await run_in_threadpool(sandbox.set_webhook_endpoint, await _json(request))
    return {}


@router.post("/v2/bot/channel/webhook/test")
async def test_webhook_endpoint(request: Request, sandbox: Channel) -> dict[str, Any]:
    body = await request.body()
    return await run_in_threadpool(sandbox.test_webhook, rules.parse_object(body) if body else None)


@router.get("/_faults")
def get_faults(sandbox: Tooling) -> dict[str, Any]:
    return sandbox.fault_plan().to_dict()


@router.post("/_faults")
async def set_faults(request: Request, sandbox: Tooling) -> dict[str, Any]:
    plan = await run_in_threadpool(sandbox.set_faults, await _json(request))
    return plan.to_dict()


@router.get("/_messages")
def list_messages(sandbox: Tooling) -> list[dict[str, Any]]:
    return sandbox.messages()


@router.delete("/_messages", status_code=204)
def clear_messages(sandbox: Tooling) -> Response:
    sandbox.clear_messages()
    return Response(status_code=204)


@router.post("/_reply_tokens")
async def mint_reply_token(request: Request, sandbox: Tooling) -> dict[str, str]:
    """`{"user_id": U...}` mints a token; with `"replyToken"` too, registers that one."""
    return {"replyToken": await run_in_threadpool(sandbox.reply_token_for, await _json(request))}


@router.post("/_reply_tokens/batch")
async def register_reply_tokens(request: Request, sandbox: Tooling) -> dict[str, int]:
    """`{"tokens": [{"replyToken", "user_id"}, ...]}` registers them all (at most 10,000)."""
    return {"registered": await run_in_threadpool(sandbox.register_reply_tokens, await _json(request))}


def _line_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LineError)
    return JSONResponse(exc.body, status_code=exc.status)


def _bad_fault_plan(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaultPlanError)
    return JSONResponse(rules.invalid_request(exc.violations), status_code=400)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    # Unknown paths and methods answer in LINE's shape too, not FastAPI's {"detail": ...}.
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(rules.error(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


def create_sandbox_app(store: SandboxStore, *, config: SandboxConfig | None = None, **settings: Any) -> FastAPI:
    """The sandbox over `store`; `settings` are SandboxConfig fields (when no config is given),
    e.g. `quota=None` or `rate_limits={"push": RateLimit(5, 1)}`."""
    sandbox = Sandbox(store, config or SandboxConfig(**settings))
    app = FastAPI(title="LINE sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox
    app.include_router(router)
    app.add_exception_handler(LineError, _line_error)
    app.add_exception_handler(FaultPlanError, _bad_fault_plan)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(RequestIdMiddleware)
    set_serving(sandbox)
    return app
