"""The sandbox's behaviour: the order in which a message request is checked, and what each
step answers. Routes (app.py) only translate HTTP to these calls and back.

A message request goes: token → rate limit → size → JSON → retry key header → payload
rules → reply token → injected fault → accept (retry key, reply token, quota, record:
one atomic store call). Every request is recorded, whatever its answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from urllib.parse import urlsplit
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from toolkit import db
from toolkit.kit.clock import utcnow
from toolkit.line.limits import RATE_LIMITS, RateLimit, Violation
from toolkit.line.sandbox import rules
from toolkit.line.sandbox.rules import Answer, LineError
from toolkit.line.sandbox.db_store import DbStore
from toolkit.line.sandbox.faults import FaultInjector, FaultPlan, parse_plan
from toolkit.line.sandbox.store import QUOTA_COUNTER, Admission, Delivery, Outcome, SandboxStore

DEFAULT_QUOTA = 5000
REPLY_TOKEN_TTL_S = 60.0
RETRY_KEY_TTL_S = 24 * 3600.0
# Derived, not random, so that every process and every run shows the same bot.
DEFAULT_BOT_USER_ID = "U" + hashlib.md5(b"toolkit LINE sandbox bot").hexdigest()
FAULTS, WEBHOOK = "faults", "webhook"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WEBHOOK_NOT_SET = "The webhook endpoint is not set"
MAX_TOKENS_PER_BATCH = 10_000


def parse_quota(value: str) -> int | None:
    """A monthly message quota as an option gives it: a number of messages, or "none"."""
    if value.strip().lower() == "none":
        return None
    try:
        quota = int(value.replace(",", "").replace("_", ""))
    except ValueError:
        raise ValueError(f"quota must be a number of messages or none, not {value!r}") from None
    if quota < 0:
        raise ValueError(f"quota must not be negative, not {value!r}")
    return quota


@dataclass(frozen=True)
class SandboxConfig:
    rate_limits: Mapping[str, RateLimit] = field(default_factory=lambda: dict(RATE_LIMITS))
    quota: int | None = DEFAULT_QUOTA  # messages a month; None: no limit ("type": "none")
    friends: int = 100  # how many users a broadcast or narrowcast reaches, for the quota
    reply_token_ttl_s: float = REPLY_TOKEN_TTL_S
    retry_key_ttl_s: float = RETRY_KEY_TTL_S
    bot_user_id: str = DEFAULT_BOT_USER_ID
    bot_name: str = "LINE sandbox"
    webhook_url: str | None = None  # until PUT /v2/bot/channel/webhook/endpoint sets one
    channel_secret: str | None = None  # signs the webhook test call when given
    # Faults are shared through the store; each process rereads them at most this often.
    settings_ttl_s: float = 1.0


def _month(now: datetime) -> int:
    return now.year * 100 + now.month


def _message_id() -> str:
    return str(10**17 + secrets.randbelow(9 * 10**17))  # LINE's ids are 18-digit numbers


class Sandbox:
    def __init__(self, store: SandboxStore, config: SandboxConfig | None = None,
                 *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.config = config or SandboxConfig()
        self.clock = clock
        self.injector = FaultInjector()
        self._plan: tuple[float, FaultPlan] | None = None
        self._lock = threading.Lock()
        self._purged_at = 0.0

    # -- message requests ---------------------------------------------------------------

    def send(self, endpoint: str, *, body: bytes | None, authorization: str | None,
             retry_key: str | None, request_id: str) -> Answer:
        """`body` None means it was over the size limit and was not kept."""
        delivery = Delivery(endpoint=endpoint, request_id=request_id, at=self.clock(),
                            retry_key=retry_key.lower() if retry_key else None)
        plan = self.fault_plan()
        answer = self._send(delivery, body, authorization, plan)
        if plan.latency_ms:
            answer = replace(answer, wait_s=answer.wait_s + plan.latency_s)
        if not delivery.accepted:
            delivery.status = answer.status
            self.store.record(delivery)
        self._purge_now_and_then()
        return answer

    def _send(self, delivery: Delivery, body: bytes | None, authorization: str | None, plan: FaultPlan) -> Answer:
        endpoint = delivery.endpoint
        if rules.bearer_token(authorization) is None:
            return Answer(401, rules.error(rules.AUTH_FAILED))
        if not self._within_rate_limit(endpoint):
            return Answer(429, rules.error(rules.RATE_LIMITED))
        if body is None:
            return Answer(413, rules.error(rules.TOO_LARGE))
        payload = rules.parse_object(body)
        if payload is None:
            return Answer(400, rules.error(rules.NOT_JSON))
        messages = payload.get("messages")
        delivery.messages = messages if isinstance(messages, list) else []
        delivery.to = rules.recipients(endpoint, payload)
        problems = rules.retry_key_violations(endpoint, delivery.retry_key) or rules.request_violations(endpoint, payload)
        if problems:
            return Answer(400, rules.invalid_request(problems))
        token = payload.get("replyToken") if endpoint == "reply" else None
        if token is not None:
            user = self.store.reply_token_user(token, now=delivery.at)
            if user is None:
                return Answer(400, rules.error(rules.INVALID_REPLY_TOKEN))
            delivery.to = [user]
        fault = self.injector.draw(plan)
        if fault == "429":
            return Answer(429, rules.error(rules.RATE_LIMITED))
        if fault == "500":
            return Answer(500, rules.error(rules.INTERNAL_ERROR))
        return self._accept(delivery, payload, token, fault, plan)

    def _accept(self, delivery: Delivery, payload: dict[str, Any], token: str | None,
                fault: str | None, plan: FaultPlan) -> Answer:
        endpoint = delivery.endpoint
        if endpoint in ("reply", "push"):
            delivery.sent_messages = [
                {"id": _message_id(), "quoteToken": secrets.token_urlsafe(24)} if kind in rules.QUOTABLE
                else {"id": _message_id()}
                for kind in rules.sent_message_types(payload)
            ]
        ok_status = 202 if endpoint == "narrowcast" else 200
        delivery.status = {"accept_then_500": 500, "timeout": 504}.get(fault or "", ok_status)
        delivery.accepted = True
        admission = Admission(
            retry_since=delivery.at - timedelta(seconds=self.config.retry_key_ttl_s), reply_token=token,
            cost=rules.audience(endpoint, payload, friends=self.config.friends),
            quota=self.config.quota, quota_bucket=_month(delivery.at),
        )
        result = self.store.accept(delivery, admission=admission)
        if result.outcome is not Outcome.ACCEPTED:
            delivery.accepted = False
        if result.outcome is Outcome.DUPLICATE:
            body: dict[str, Any] = rules.error(rules.RETRY_KEY_ACCEPTED)
            if endpoint == "push" and result.sent_messages:
                body["sentMessages"] = result.sent_messages  # as LINE does for push
            return Answer(409, body, {"x-line-accepted-request-id": result.accepted_request_id or ""})
        if result.outcome is Outcome.INVALID_REPLY_TOKEN:
            return Answer(400, rules.error(rules.INVALID_REPLY_TOKEN))
        if result.outcome is Outcome.QUOTA_EXCEEDED:
            return Answer(429, rules.error(rules.MONTHLY_LIMIT))
        if fault == "accept_then_500":
            return Answer(500, rules.error(rules.INTERNAL_ERROR))
        if fault == "timeout":
            return Answer(504, rules.error(rules.GATEWAY_TIMEOUT), wait_s=plan.timeout_s)
        body = {"sentMessages": delivery.sent_messages} if delivery.sent_messages else {}
        return Answer(ok_status, body)

    def _within_rate_limit(self, endpoint: str) -> bool:
        limit = self.config.rate_limits.get(endpoint)
        if limit is None:
            return True
        return self.store.hit(f"rate:{endpoint}", bucket=int(time.time() // limit.per_s), limit=limit.requests)

    def _purge_now_and_then(self) -> None:
        # Expired tokens and keys are ignored when read; deleting them only bounds the
        # tables, so once a minute per process is plenty.
        if time.monotonic() - self._purged_at < 60:
            return
        self._purged_at = time.monotonic()
        now = self.clock()
        self.store.purge(now=now, retry_since=now - timedelta(seconds=self.config.retry_key_ttl_s))

    # -- faults ---------------------------------------------------------------------------

    def fault_plan(self) -> FaultPlan:
        with self._lock:
            cached = self._plan
        if cached is not None and time.monotonic() - cached[0] < self.config.settings_ttl_s:
            return cached[1]
        plan = FaultPlan.from_dict(self.store.setting(FAULTS))
        with self._lock:
            self._plan = (time.monotonic(), plan)
        return plan

    def set_faults(self, body: Any) -> FaultPlan:
        plan = parse_plan(body)  # raises FaultPlanError
        self.store.put_setting(FAULTS, plan.to_dict() if plan.rates or plan.latency_ms else None)
        with self._lock:
            self._plan = (time.monotonic(), plan)
        return plan

    # -- reply tokens ---------------------------------------------------------------------

    def register_reply_token(self, token: str, user_id: str, *, ttl_s: float | None = None) -> None:
        ttl = self.config.reply_token_ttl_s if ttl_s is None else ttl_s
        self.store.add_reply_token(token, user_id, expires_at=self.clock() + timedelta(seconds=ttl))

    def reply_token_for(self, payload: dict[str, Any] | None) -> str:
        """POST /_reply_tokens: mint a token for `user_id`, or register the given `replyToken`."""
        user_id, token = (payload or {}).get("user_id"), (payload or {}).get("replyToken")
        problems = _token_violations(user_id, token)
        if problems:
            raise LineError(400, rules.invalid_request(problems))
        token = token or secrets.token_hex(16)  # LINE's reply tokens are 32 hex characters
        self.register_reply_token(token, user_id)
        return token

    def register_reply_tokens(self, payload: dict[str, Any] | None) -> int:
        """POST /_reply_tokens/batch: `{"tokens": [{"replyToken", "user_id"}, ...]}`, all
        registered or (one of them malformed) none. For a load generator playing LINE, which
        knows the reply tokens of the events it sends as LINE itself does."""
        tokens = (payload or {}).get("tokens")
        if not isinstance(tokens, list) or not 0 < len(tokens) <= MAX_TOKENS_PER_BATCH:
            raise LineError(400, rules.invalid_request(
                [Violation("tokens", f"Must be a list of 1 to {MAX_TOKENS_PER_BATCH} objects")]))
        problems: list[Violation] = []
        for i, entry in enumerate(tokens):
            entry = entry if isinstance(entry, dict) else {}
            problems += [Violation(f"tokens[{i}].{v.property}", v.message)
                         for v in _token_violations(entry.get("user_id"), entry.get("replyToken"), required=True)]
        if problems:
            raise LineError(400, rules.invalid_request(problems[:20]))
        for entry in tokens:
            self.register_reply_token(entry["replyToken"], entry["user_id"])
        return len(tokens)

    # -- reads and channel settings ------------------------------------------------------

    def profile(self, user_id: str) -> dict[str, Any]:
        problems = rules.user_id_violations(user_id)
        if problems:
            raise LineError(400, rules.error("Invalid user ID", problems))
        return {"userId": user_id, "displayName": f"Sandbox user {user_id[-6:]}", "language": "zh-TW"}

    def quota(self) -> dict[str, Any]:
        if self.config.quota is None:
            return {"type": "none"}
        return {"type": "limited", "value": self.config.quota}

    def consumption(self) -> dict[str, Any]:
        return {"totalUsage": self.store.count(QUOTA_COUNTER, bucket=_month(self.clock()))}

    def bot_info(self) -> dict[str, Any]:
        return {"userId": self.config.bot_user_id, "basicId": "@sandbox", "displayName": self.config.bot_name,
                "chatMode": "bot", "markAsReadMode": "auto"}

    def webhook_endpoint(self) -> dict[str, Any]:
        stored = self.store.setting(WEBHOOK)
        url = stored["endpoint"] if stored is not None else self.config.webhook_url
        if not url:
            # The spec's 200 needs a URL; "nothing set" is told apart as a 404 in LINE's shape.
            raise LineError(404, rules.error(WEBHOOK_NOT_SET))
        return {"endpoint": url, "active": True}

    def set_webhook_endpoint(self, payload: dict[str, Any] | None) -> None:
        problems = rules.webhook_url_violations(payload, required=True)
        if problems or payload is None:
            raise LineError(400, rules.invalid_request(problems))
        self.store.put_setting(WEBHOOK, {"endpoint": payload["endpoint"]})

    def test_webhook(self, payload: dict[str, Any] | None) -> dict[str, Any]:
        """Send LINE's test call (no events) to the given or configured endpoint, as LINE does."""
        problems = rules.webhook_url_violations(payload, required=False)
        if problems:
            raise LineError(400, rules.invalid_request(problems))
        url = (payload or {}).get("endpoint") or self.webhook_endpoint()["endpoint"]
        body = json.dumps({"destination": self.config.bot_user_id, "events": []}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "LineBotWebhook/2.0"}
        if self.config.channel_secret:
            digest = hmac.new(self.config.channel_secret.encode(), body, hashlib.sha256).digest()
            headers["x-line-signature"] = base64.b64encode(digest).decode()
        sent_at = self.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")

        def result(status: int, reason: str, detail: str) -> dict[str, Any]:
            return {"success": 200 <= status < 300, "timestamp": sent_at, "statusCode": status,
                    "reason": reason, "detail": detail}

        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            # A stand-in for LINE must never reach out of this machine.
            return result(0, "COULD_NOT_CONNECT", "the sandbox only calls webhooks on this machine (127.0.0.1)")
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=5.0)
        except httpx.TimeoutException:
            return result(0, "REQUEST_TIMEOUT", "The webhook did not answer within 5 s")
        except httpx.HTTPError as exc:
            return result(0, "COULD_NOT_CONNECT", str(exc) or type(exc).__name__)
        ok = 200 <= response.status_code < 300
        return result(response.status_code, "OK" if ok else "ERROR_STATUS_CODE", str(response.status_code))

    # -- the record -----------------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        return self.store.messages()

    def clear_messages(self) -> None:
        self.store.clear_messages()


def _token_violations(user_id: Any, token: Any, *, required: bool = False) -> list[Violation]:
    problems = rules.user_id_violations(user_id if isinstance(user_id, str) else "")
    if (token is not None or required) and (not isinstance(token, str) or not 0 < len(token) <= 255):
        problems.append(Violation("replyToken", "Must be a non-empty string of at most 255 characters"))
    return problems


# The sandbox this process serves, set by create_sandbox_app: where register_reply_token
# puts tokens when not told otherwise.
_serving: Sandbox | None = None


def set_serving(sandbox: Sandbox) -> None:
    global _serving
    _serving = sandbox


def register_reply_token(token: str, user_id: str, *, sandbox: Sandbox | None = None) -> None:
    """Make the reply token of an event that reached our webhook usable at the sandbox.

    Goes to the given sandbox, else to the one this process serves, else straight to the
    database tables (a worker process beside `toolkit serve` shares them).
    """
    target = sandbox or _serving or Sandbox(DbStore(db.get_engine()))
    target.register_reply_token(token, user_id)
