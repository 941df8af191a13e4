"""`python -m toolkit.line.sandbox`: the standalone in-memory sandbox, as `toolkit line
sandbox` runs it (with the same options), without loading the CLI: what a load test starts.

    python -m toolkit.line.sandbox --port 8081 --quota none

`--quota none` lifts the monthly message quota (5,000 by default, as a free plan): a
benchmark whose backlog outlives the one-minute reply tokens falls back to pushes, which
count against it, and would measure the quota instead of the worker.
"""

from __future__ import annotations

import argparse

import uvicorn

from toolkit.line.sandbox.app import create_sandbox_app
from toolkit.line.sandbox.service import DEFAULT_QUOTA, REPLY_TOKEN_TTL_S, parse_quota
from toolkit.line.sandbox.store import MemoryStore


def quota(value: str) -> int | None:
    try:
        return parse_quota(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m toolkit.line.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--quota", type=quota, default=DEFAULT_QUOTA,
                        help=f"messages a month, or none (default {DEFAULT_QUOTA:,})")
    parser.add_argument("--reply-token-ttl-s", type=float, default=REPLY_TOKEN_TTL_S,
                        help=f"how long a reply token stays valid (default {REPLY_TOKEN_TTL_S:g} s, as LINE's)")
    args = parser.parse_args(argv)
    app = create_sandbox_app(MemoryStore(), quota=args.quota, reply_token_ttl_s=args.reply_token_ttl_s)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
