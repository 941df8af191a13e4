"""LINE webhook acknowledgement: `toolkit serve --with-worker` vs line-bot-sdk's echo bot.

Signed single-event webhook bodies are posted by a closed loop of --concurrency clients
(aiohttp, in a process of its own) to

  ours      `toolkit serve --with-worker` with default settings on a fresh PostgreSQL
            database (follow events with unique user ids: each one creates a contact,
            grants consent and gets exactly one welcome reply from the worker, through
            the mounted LINE sandbox);
  baseline  line-bot-sdk's Flask echo bot (benchmarks/baselines/echo_bot.py) under
            gunicorn with 2 sync workers, replying inside the request to a loopback fake
            LINE (benchmarks/baselines/fake_line.py) — text events, one echo each.

Both are measured with LINE answering instantly, then with a --latency-ms round trip
(the sandbox's `latency_ms` fault; the fake's latency): our acknowledgement must not care.
Every figure is the median of --runs runs after a warm-up. Our bursts run back to back, so
the worker (a nice-19 child of serve) drains whenever they leave it CPU and every burst
after the first is measured with it busy. Then the script waits at most --drain-timeout
for the rest of the backlog (LINE instant) and checks the database: every event stored
exactly once, none handled or answered twice, none dead-lettered, and — when drained —
every one `done` with exactly one accepted message (reply, or push fallback) per user.
A failed check exits 1; a backlog not drained in time is a missed target, reported in
the `backlog_drain_s` line. JSON lines go to stdout, progress to stderr.

The script drops and recreates the database --database (default `bench_webhook`) on the
PostgreSQL server of --postgres; never point it at a database you care about.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, emit, fail, log, step  # noqa: E402

BENCHMARK = "webhook"
SECRET = "bench-webhook-channel-secret-0123456789"  # a fixed channel secret, bench only
PROTECTED = {"postgres", "template0", "template1", "test", "bench"}
TARGET_EPS = 1500
TARGET_P99_MS = 100
BASELINE = "line-bot-sdk echo bot (Flask + WebhookHandler, gunicorn 2 sync workers, replies in the request)"
BASELINES_DIR = Path(__file__).resolve().parent / "baselines"
PY = sys.executable
LOADGEN_TIMEOUT_S = 30  # per request
STARTUP_TIMEOUT_S = 60


# --- the load generator (runs in a process of its own: `webhook.py _load ...`) ------------

def event_body(kind: str, tag: str, i: int) -> bytes:
    """One LINE webhook body with one event, unique per (tag, i)."""
    user_id = "U" + hashlib.md5(f"{tag}:{i}".encode()).hexdigest()
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": "01" + hashlib.md5(f"event:{tag}:{i}".encode()).hexdigest()[:24].upper(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": hashlib.md5(f"reply:{tag}:{i}".encode()).hexdigest(),
    }
    if kind == "follow":
        event["follow"] = {"isUnblocked": False}
    else:
        event["message"] = {"type": "text", "id": str(10**17 + i), "quoteToken": "q" + str(i), "text": f"hello {i}"}
    return json.dumps({"destination": "U" + "0" * 32, "events": [event]}, separators=(",", ":")).encode()


def signature(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


async def closed_loop(url: str, bodies: list[tuple[bytes, str]], concurrency: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = [0.0] * len(bodies)
    statuses: dict[int, int] = {}
    errors: list[str] = []
    next_index = iter(range(len(bodies)))
    timeout = aiohttp.ClientTimeout(total=LOADGEN_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            for i in next_index:
                body, sig = bodies[i]
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers={
                        "content-type": "application/json; charset=utf-8", "x-line-signature": sig,
                    }) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    status = 0
                    if len(errors) < 5:
                        errors.append(f"{type(exc).__name__}: {exc}")
                latencies[i] = time.perf_counter() - started
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "elapsed_s": elapsed,
        "events_per_s": n / elapsed,
        "p50_ms": 1000 * latencies[int(0.50 * (n - 1))],
        "p99_ms": 1000 * latencies[int(0.99 * (n - 1))],
        "max_ms": 1000 * latencies[-1],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
    }


def load_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="webhook.py _load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["follow", "message"], required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        raise SystemExit("the load generator only talks to 127.0.0.1")
    bodies = []
    for i in range(args.requests):  # signed before the clock starts
        body = event_body(args.kind, args.tag, i)
        bodies.append((body, signature(body)))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(closed_loop(args.url, bodies, args.concurrency))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


@dataclass(frozen=True)
class Burst:
    events_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    elapsed_s: float


def burst(url: str, *, kind: str, tag: str, requests: int, concurrency: int) -> Burst:
    """Run the load generator in its own process; every request must be answered 200."""
    command = [PY, __file__, "_load", "--url", url, "--kind", kind, "--tag", tag,
               "--requests", str(requests), "--concurrency", str(concurrency)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=LOADGEN_TIMEOUT_S + requests / 10 + 60)
    if done.returncode != 0:
        fail(f"load generator failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["statuses"] != {"200": requests}:
        fail(f"{url}: not every request was acknowledged 200: {result['statuses']} {result['errors']}")
    return Burst(result["events_per_s"], result["p50_ms"], result["p99_ms"], result["max_ms"], result["elapsed_s"])


# --- processes ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen[bytes], timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(f"{process.args!r} exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    fail(f"{url} did not answer within {timeout_s} s")


@contextmanager
def running(command: list[str], *, env: dict[str, str], ready_url: str, name: str) -> Iterator[subprocess.Popen[bytes]]:
    log(f"  starting {name}: {' '.join(command[1:] if command[0] == PY else command)}", markup=False)
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        wait_http(ready_url, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# --- the database --------------------------------------------------------------------------

def recreate_database(server: str, name: str) -> str:
    import psycopg

    if name in PROTECTED or name.startswith("toolkit_test"):
        fail(f"refusing to drop database {name!r}", 2)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def status_counts(dsn: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM webhook_event GROUP BY status").fetchall())


@dataclass(frozen=True)
class Drain:
    drained: bool
    seconds: float
    backlog: int  # events not done when the wait started
    handled: int  # of them, done by the end of the wait
    counts: dict[str, int]


def wait_drained(dsn: str, expected: int, timeout_s: float) -> Drain:
    """Wait until all `expected` events are done, at most `timeout_s`."""
    started = time.perf_counter()
    counts = status_counts(dsn)
    backlog = expected - counts.get("done", 0)
    while True:
        elapsed = time.perf_counter() - started
        done = counts.get("done", 0)
        if sum(counts.values()) == expected and done == expected:
            return Drain(True, elapsed, backlog, backlog, counts)
        if elapsed > timeout_s or counts.get("dead"):
            return Drain(False, elapsed, backlog, backlog - (expected - done), counts)
        time.sleep(0.25)
        counts = status_counts(dsn)


def verify(dsn: str, expected_events: int, *, drained: bool) -> tuple[dict[str, Any], list[str]]:
    """Every event stored once; handled at most once and answered at most once (reply, or
    push fallback); when drained, every event handled and answered exactly once."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows, distinct, done, handled = conn.execute(
            "SELECT count(*), count(DISTINCT webhook_event_id), count(*) FILTER (WHERE status = 'done'), "
            "count(*) FILTER (WHERE handled_at IS NOT NULL) FROM webhook_event").fetchone()
        statuses = dict(conn.execute("SELECT status, count(*) FROM webhook_event GROUP BY 1").fetchall())
        deliveries = dict(conn.execute(
            "SELECT coalesce(delivery, 'none'), count(*) FROM webhook_event GROUP BY 1").fetchall())
        answered, twice = conn.execute(
            """
            SELECT count(*), count(*) FILTER (WHERE n > 1) FROM (
                SELECT r.user_id, count(*) AS n
                FROM sandbox_message m, jsonb_array_elements_text(m.recipients) AS r(user_id)
                WHERE m.accepted GROUP BY r.user_id) AS per_user
            """).fetchone()
        endpoints = dict(conn.execute(
            "SELECT endpoint || ':' || status, count(*) FROM sandbox_message GROUP BY 1").fetchall())
    problems = []
    if rows != expected_events or distinct != expected_events:
        problems.append(f"{rows:,} webhook_event rows ({distinct:,} distinct ids), expected {expected_events:,}")
    if twice:
        problems.append(f"{twice:,} users answered more than once")
    if drained and (done != expected_events or answered != expected_events):
        problems.append(f"{done:,} done and {answered:,} users answered, expected {expected_events:,} each")
    if statuses.get("dead"):
        problems.append(f"{statuses['dead']:,} events dead-lettered")
    return ({"webhook_events": rows, "statuses": statuses, "handled": handled, "users_answered": answered,
             "users_answered_twice": twice, "deliveries": deliveries, "sandbox_requests": endpoints}, problems)


# --- the two systems ----------------------------------------------------------------------

def set_sandbox_latency(base_url: str, latency_ms: float) -> None:
    import httpx

    response = httpx.post(f"{base_url}/sandbox/line/_faults", json={"latency_ms": latency_ms} if latency_ms else {})
    response.raise_for_status()


def wait_for_worker(dsn: str, base_url: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """One event through the whole chain, so the worker child is up before anything is timed."""
    import httpx

    body = event_body("follow", "ready", 0)
    response = httpx.post(f"{base_url}/line/webhook", content=body, headers={"x-line-signature": signature(body)})
    if response.status_code != 200:
        fail(f"webhook answered {response.status_code}: {response.text[:300]}")
    if not wait_drained(dsn, 1, timeout_s).drained:
        fail(f"the worker did not handle one event within {timeout_s:g} s")


def measure_ours(args: argparse.Namespace, dsn: str, sa_url: str) -> dict[str, Any]:
    """Warm-up, then --runs bursts with LINE instant and --runs with LINE slow, back to
    back: the worker drains (at the lowest CPU priority) whenever the bursts leave it CPU,
    so every burst after the first is measured with the worker busy. Then the backlog's
    drain is timed (LINE instant again) and the database checked."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLKIT_")}
    env.update(TOOLKIT_DATABASE_URL=sa_url, TOOLKIT_LINE_CHANNEL_SECRET=SECRET, TOOLKIT_LINE_SANDBOX="1",
               TOOLKIT_ENV="development")
    with step("toolkit db upgrade"):
        done = subprocess.run([PY, "-m", "toolkit.cli", "db", "upgrade"], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            fail(f"toolkit db upgrade failed: {done.stderr[-2000:]}")
    serve = [PY, "-m", "toolkit.cli", "serve", "--with-worker", "--port", str(port), *args.serve_arg]
    results: dict[str, Any] = {}
    with running(serve, env=env, ready_url=f"{base_url}/healthz", name="toolkit serve --with-worker"):
        wait_for_worker(dsn, base_url)
        sent = 1
        url = f"{base_url}/line/webhook"

        def one(tag: str, requests: int) -> Burst:
            nonlocal sent
            result = burst(url, kind="follow", tag=tag, requests=requests, concurrency=args.concurrency)
            sent += requests
            log(f"  {tag}: {result.events_per_s:,.0f} events/s, p50 {result.p50_ms:.1f} ms, "
                f"p99 {result.p99_ms:.1f} ms, max {result.max_ms:.0f} ms")
            return result

        for latency_ms in ([0.0] + ([args.latency_ms] if args.latency_ms else [])):
            label = f"line{int(latency_ms)}ms"
            warm = args.warmup if not latency_ms else 0  # the process is warm by then
            with step(f"ours, LINE round trip {latency_ms:g} ms: "
                      f"{f'warm-up {warm:,} + ' if warm else ''}{args.runs} x {args.requests:,} requests"):
                set_sandbox_latency(base_url, latency_ms)
                if warm:
                    one(f"w{label}", warm)
                results[label] = [one(f"r{i}{label}", args.requests) for i in range(args.runs)]
        set_sandbox_latency(base_url, 0)
        with step(f"waiting for the worker to drain the backlog (at most {args.drain_timeout:g} s)"):
            drain = wait_drained(dsn, sent, args.drain_timeout)
            log(f"  {'drained' if drain.drained else 'NOT drained'}: {drain.handled:,} of a backlog of "
                f"{drain.backlog:,} handled in {drain.seconds:.1f} s; {drain.counts}", markup=False)
        results["drain"] = drain
        with step("checking the database: stored once, handled once, answered once"):
            results["verified"], results["problems"] = verify(dsn, sent, drained=drain.drained)
            log(f"  {results['verified']}", markup=False)
            for problem in results["problems"]:
                log(f"  [bold red]problem:[/bold red] {problem}")
        results["sent"] = sent
    return results


def measure_echo_bot(args: argparse.Namespace) -> dict[str, Any]:
    fake_port, bot_port = free_port(), free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    env = {**os.environ, "LINE_CHANNEL_SECRET": SECRET, "LINE_API_HOST": fake_url}
    gunicorn = [PY, "-m", "gunicorn", "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{bot_port}",
                "--chdir", str(BASELINES_DIR), "--log-level", "warning", "echo_bot:app"]
    results: dict[str, Any] = {}
    import httpx

    with ExitStack() as stack:
        stack.enter_context(running([PY, str(BASELINES_DIR / "fake_line.py"), "--port", str(fake_port)], env=env,
                                    ready_url=f"{fake_url}/_stats", name="fake LINE"))
        stack.enter_context(running(gunicorn, env=env, ready_url=f"http://127.0.0.1:{bot_port}/callback",
                                    name="echo bot"))
        url = f"http://127.0.0.1:{bot_port}/callback"
        for latency_ms, requests in [(0.0, args.baseline_requests)] + (
                [(args.latency_ms, args.baseline_latency_requests)] if args.latency_ms else []):
            label = f"line{int(latency_ms)}ms"
            httpx.post(f"{fake_url}/_latency", json={"latency_ms": latency_ms}).raise_for_status()
            with step(f"echo bot, LINE round trip {latency_ms:g} ms: warm-up + {args.runs} x {requests:,} requests"):
                runs = []
                for i in range(-1 if args.warmup else 0, args.runs):
                    n = requests if i >= 0 else min(args.warmup, max(requests // 4, 1))
                    httpx.post(f"{fake_url}/_reset").raise_for_status()
                    result = burst(url, kind="message", tag=f"e{i + 1}{label}", requests=n,
                                   concurrency=args.concurrency)
                    stats = httpx.get(f"{fake_url}/_stats").json()
                    if stats["replies"] != n or stats["distinct_tokens"] != n:
                        fail(f"echo bot: {stats} for {n} events")
                    log(f"  {'warm-up' if i < 0 else f'run {i + 1}'}: {result.events_per_s:,.0f} events/s, "
                        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, max {result.max_ms:.0f} ms")
                    if i >= 0:
                        runs.append(result)
                results[label] = runs
    return results


# --- figures -------------------------------------------------------------------------------

def median(runs: list[Burst], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def emit_figures(args: argparse.Namespace, ours: dict[str, Any], echo: dict[str, Any]) -> None:
    common = {"concurrency": args.concurrency, "runs": args.runs, "warmup_requests": args.warmup,
              "cpus": os.cpu_count(), "server": " ".join(["toolkit serve --with-worker", *args.serve_arg]),
              "events": "one follow event per request, unique user ids (ours); one text event (echo bot)",
              "load_generator": "aiohttp closed loop, own process"}
    for label, latency_ms in [("line0ms", 0.0)] + ([(f"line{int(args.latency_ms)}ms", args.latency_ms)]
                                                    if args.latency_ms else []):
        mine, theirs = ours.get(label), echo.get(label)
        if not mine:
            continue
        suffix = "" if not latency_ms else f"_line_{int(latency_ms)}ms"
        params = {**common, "requests": args.requests, "line_latency_ms": latency_ms,
                  "baseline_requests": args.baseline_requests if not latency_ms else args.baseline_latency_requests}

        def runs_of(runs: list[Burst] | None, field: str) -> list[float] | None:
            return None if not runs else [round(getattr(r, field), 2) for r in runs]

        eps, base_eps = median(mine, "events_per_s"), (median(theirs, "events_per_s") if theirs else None)
        emit(benchmark=BENCHMARK, metric=f"acked_events_per_s{suffix}", value=eps, unit="events/s",
             baseline=BASELINE, baseline_value=base_eps,
             ratio_value=round(eps / base_eps, 2) if base_eps else None, target=f">= {TARGET_EPS}",
             params={**params, "runs_values": runs_of(mine, "events_per_s"),
                     "baseline_runs_values": runs_of(theirs, "events_per_s")})
        for metric, field, target in [("ack_p99_ms", "p99_ms", f"< {TARGET_P99_MS}"), ("ack_p50_ms", "p50_ms", None)]:
            value = median(mine, field)
            base = median(theirs, field) if theirs else None
            emit(benchmark=BENCHMARK, metric=f"{metric}{suffix}", value=value, unit="ms", baseline=BASELINE,
                 baseline_value=base, target=target,
                 params={**params, "runs_values": runs_of(mine, field), "baseline_runs_values": runs_of(theirs, field),
                         **({"max_ms_runs": runs_of(mine, "max_ms")} if field == "p99_ms" else {})})
    drain: Drain = ours["drain"]
    total_requests = args.runs * args.requests * (2 if args.latency_ms else 1) + args.warmup
    emit(benchmark=BENCHMARK, metric="backlog_drain_s", value=drain.seconds, unit="s",
         baseline="echo bot: no backlog (replies inside the request)", baseline_value=None, ratio_value=None,
         target=f"drained <= {args.drain_timeout:g} s after the burst; every event handled and answered once",
         params={**common, "drained": drain.drained, "events_sent": ours["sent"],
                 "backlog_at_end_of_bursts": drain.backlog, "handled_during_wait": drain.handled,
                 "handled_per_s": round(drain.handled / drain.seconds, 1) if drain.seconds else None,
                 "bursts": f"warm-up {args.warmup:,} + {args.runs} x {args.requests:,} (LINE 0 ms)"
                           + (f" + {args.runs} x {args.requests:,} (LINE {args.latency_ms:g} ms)" if args.latency_ms else "")
                           + f" = {total_requests:,} requests, back to back",
                 "statuses_at_end": drain.counts, "verified": ours["verified"], "problems": ours["problems"]})


# --- main ----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per timed run (default 20,000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (default 3)")
    parser.add_argument("--warmup", type=int, default=2_000, help="requests of the untimed warm-up burst (default 2,000)")
    parser.add_argument("--concurrency", type=int, default=50, help="closed-loop clients (default 50)")
    parser.add_argument("--latency-ms", type=float, default=50.0,
                        help="LINE round trip of the second variant; 0 skips it (default 50)")
    parser.add_argument("--baseline-requests", type=int, default=10_000,
                        help="echo-bot requests per run with instant LINE (default 10,000: it takes 7-25 s a run)")
    parser.add_argument("--baseline-latency-requests", type=int, default=600,
                        help="echo-bot requests per run with the slow LINE: ~37/s, so fewer (default 600)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the echo bot")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for the backlog (default 120)")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server (default postgresql://postgres@127.0.0.1:5432)")
    parser.add_argument("--database", default="bench_webhook", help="dropped and recreated (default bench_webhook)")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra argument for `toolkit serve` (repeatable), e.g. --serve-arg=--host=127.0.0.1")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.requests < 100 or args.concurrency < 1:
        parser.error("need --runs >= 1, --requests >= 100, --concurrency >= 1")
    args.baseline_requests = min(args.baseline_requests, args.requests)
    args.baseline_latency_requests = min(args.baseline_latency_requests, args.baseline_requests)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_load"]:
        return load_main(argv[1:])
    args = parse_args(argv)
    started = time.perf_counter()
    with step(f"fresh database {args.database}"):
        dsn = recreate_database(args.postgres.rstrip("/"), args.database)
    sa_url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    ours = measure_ours(args, dsn, sa_url)
    echo = {} if args.no_baseline else measure_echo_bot(args)
    emit_figures(args, ours, echo)
    log(f"total {time.perf_counter() - started:.1f} s")
    if not ours["drain"].drained:
        log(f"[bold yellow]target missed:[/bold yellow] the backlog was not drained within {args.drain_timeout:g} s "
            "(see backlog_drain_s); what was handled was checked")
    if ours["problems"]:
        log("[bold red]the database check failed:[/bold red] " + "; ".join(ours["problems"]))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
