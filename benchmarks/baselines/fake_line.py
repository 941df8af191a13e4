"""A loopback stand-in for LINE's Messaging API, for the echo-bot baseline of
benchmarks/webhook.py: `POST /v2/bot/message/reply` answers 200 `{"sentMessages": [...]}`
(one sent message, as LINE answers a one-message reply)
instantly or after `--latency-ms` (changeable at run time through `POST /_latency`),
and counts what it got so that the benchmark can check one reply per event.

    python benchmarks/baselines/fake_line.py --port 8101 [--latency-ms 50]

Only 127.0.0.1. Not a LINE emulator (that is toolkit/line/sandbox/): no checks at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

# The SDK's ReplyMessageResponse wants at least one sent message.
SENT = json.dumps({"sentMessages": [{"id": "100000000000000001", "quoteToken": "q" * 24}]}).encode()


def build_app(latency_ms: float) -> web.Application:
    state = {"latency_s": latency_ms / 1000, "replies": 0, "tokens": set()}

    async def reply(request: web.Request) -> web.Response:
        payload = await request.json()
        state["replies"] += 1
        state["tokens"].add(payload.get("replyToken"))
        if state["latency_s"]:
            await asyncio.sleep(state["latency_s"])
        return web.Response(body=SENT, content_type="application/json")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"replies": state["replies"], "distinct_tokens": len(state["tokens"]),
                                  "latency_ms": state["latency_s"] * 1000})

    async def reset(_request: web.Request) -> web.Response:
        state["replies"], state["tokens"] = 0, set()
        return web.json_response({})

    async def set_latency(request: web.Request) -> web.Response:
        state["latency_s"] = float((await request.json()).get("latency_ms", 0)) / 1000
        return web.json_response({"latency_ms": state["latency_s"] * 1000})

    app = web.Application()
    app.router.add_post("/v2/bot/message/reply", reply)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/_latency", set_latency)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop  # in uvicorn[standard]

        uvloop.install()
    except ImportError:
        pass
    web.run_app(build_app(args.latency_ms), host="127.0.0.1", port=args.port, print=None,
                access_log=None, backlog=1024)


if __name__ == "__main__":
    main()
