"""Consent gate at a million contacts: `allowed()` for everyone vs one query per contact.

Runs against TOOLKIT_DATABASE_URL, which must be PostgreSQL (a freshly created database
works: the script migrates it). It seeds --contacts contacts with a LINE identity each and
a `marketing.line_push` decision each:

    id % 20 in 0..17   granted                                   90%  -> allowed
    id % 20 == 18      withdrawn                                  5%
    id % 20 == 19      granted, but the LINE identity is blocked  2.5%
                       (even id // 20) or suppressed (odd)        2.5%

then times, each as the median of --runs runs after one warm-up run, the three taking
turns so that load from elsewhere on the machine falls on all of them alike:

    allowed_select_1m  allowed(select(Contact.id), ...)  (the headline figure)
    allowed_list_1m    allowed([1M ints], ...)           (a dense list: see gate.DENSE_LIST_MIN)
    bare_sql_floor_1m  the minimal hand-written set-based SQL, fetched to Python

against the baseline of checking contacts one query each, timed on a random --sample of
contacts and scaled to all of them. Every answer is checked against the seeded truth; a
wrong answer exits non-zero. JSON lines go to stdout, progress to stderr.

The benchmark owns the contact, contact_identity, consent_event, consent_state and
suppression tables of its database: it TRUNCATEs them (CASCADE) before seeding, and reuses
them as they are when they already hold exactly this benchmark's data. It refuses to touch
a database whose tables hold anything else unless --reset is given. Never point it at a
database you care about.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import os
import random
import time
from typing import Any

# First: _common puts the repository on sys.path when the toolkit is not installed.
from _common import emit, fail, log, step, time_interleaved, time_runs

from sqlalchemy import Engine, bindparam, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from toolkit import migrate
from toolkit.consent import service as consent
from toolkit.consent.gate import allowed_select
from toolkit.contacts.models import Contact
from toolkit.db import make_engine
from toolkit.kit import secrets
from toolkit.settings import get_settings

BENCHMARK = "consent_gate"
PURPOSE = "marketing.line_push"
CHANNEL = "line"
MARKER = "benchmark"  # contact.tier and suppression.reason of every seeded row
TABLES = ("contact", "contact_identity", "consent_event", "consent_state", "suppression")
TARGET_S = 3.0  # at 1M contacts, on the 2-core reference machine
DEFAULT_CONTACTS = 1_000_000
DEFAULT_SAMPLE = 10_000
SAMPLE_WARMUP = 1_000  # per-contact baseline: the warm-up run checks this many


# --- the seeded truth ----------------------------------------------------------------------

def expected_allowed(n: int) -> set[int]:
    return {i for i in range(1, n + 1) if i % 20 < 18}


def expected_suppressed(n: int) -> int:
    return sum(1 for i in range(19, n + 1, 20) if (i // 20) % 2 == 1)


# --- database ------------------------------------------------------------------------------

def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys (RFC 2104), so that PostgreSQL's built-in
    sha256() can compute the same keyed hash as toolkit.kit.secrets.identity_hash without
    the pgcrypto extension: HMAC(k, m) = sha256(opad || sha256(ipad || m))."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def foreign_rows(engine: Engine) -> dict[str, int]:
    """Rows in the benchmark's tables that this benchmark did not seed."""
    with engine.connect() as conn:
        return {
            "contact": conn.execute(
                text("SELECT count(*) FROM contact WHERE tier IS DISTINCT FROM :m"), {"m": MARKER}
            ).scalar_one(),
            "suppression": conn.execute(
                text("SELECT count(*) FROM suppression WHERE reason <> :m"), {"m": MARKER}
            ).scalar_one(),
        }


def seeded_matches(engine: Engine, n: int, purpose_id: int, key: bytes) -> bool:
    """Whether the tables already hold exactly this benchmark's data for n contacts."""
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                """
                SELECT (SELECT count(*) FROM contact),
                       (SELECT coalesce(max(id), 0) FROM contact),
                       (SELECT count(*) FROM contact_identity),
                       (SELECT count(*) FROM consent_state WHERE purpose_id = :p),
                       (SELECT count(*) FROM consent_state),
                       (SELECT count(*) FROM suppression)
                """
            ),
            {"p": purpose_id},
        ).one()
        if tuple(counts) != (n, n, n, n, n, expected_suppressed(n)):
            return False
        # The suppression key may have changed since: the stored hashes must still match.
        row = conn.execute(
            text("SELECT external_id, external_hash FROM contact_identity ORDER BY id LIMIT 1")
        ).one()
    return row.external_hash == hmac.new(key, f"{CHANNEL}:{row.external_id}".encode(), hashlib.sha256).hexdigest()


def seed(engine: Engine, n: int, purpose_id: int, notice_version: str, key: bytes) -> None:
    ipad, opad = hmac_pads(key)
    params: dict[str, Any] = {"n": n, "m": MARKER, "p": purpose_id, "nv": notice_version}
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        with step(f"contact: {n:,} rows"):
            conn.execute(
                text(
                    """
                    INSERT INTO contact (id, display_name, locale, tz, tier, created_at, updated_at)
                    SELECT i, 'Bench contact ' || i, 'zh-TW', 'Asia/Taipei', :m, now(), now()
                    FROM generate_series(1, :n) AS i
                    """
                ),
                params,
            )
        with step(f"contact_identity: {n:,} rows, keyed HMAC computed in SQL"):
            conn.execute(
                text(
                    """
                    INSERT INTO contact_identity
                        (id, contact_id, channel, external_id, external_hash, followed, blocked_at, created_at)
                    SELECT i, i, 'line', x.external_id,
                           encode(sha256(:opad || sha256(:ipad || convert_to('line:' || x.external_id, 'UTF8'))), 'hex'),
                           NOT x.blocked, CASE WHEN x.blocked THEN now() END, now()
                    FROM generate_series(1, :n) AS i,
                         LATERAL (SELECT 'U' || md5('bench:' || i) AS external_id,
                                         i % 20 = 19 AND (i / 20) % 2 = 0 AS blocked) AS x
                    """
                ),
                {**params, "ipad": ipad, "opad": opad},
            )
        with step(f"consent_event + consent_state: {n:,} rows each"):
            conn.execute(
                text(
                    """
                    INSERT INTO consent_event
                        (id, contact_id, purpose_id, action, source, notice_version, evidence, actor, occurred_at)
                    SELECT i, i, :p,
                           CASE WHEN i % 20 = 18 THEN 'withdraw' ELSE 'grant' END,
                           CASE WHEN i % 20 = 18 THEN 'keyword' ELSE 'import' END,
                           :nv, '{}'::jsonb, :m, now()
                    FROM generate_series(1, :n) AS i
                    """
                ),
                params,
            )
            conn.execute(
                text(
                    """
                    INSERT INTO consent_state
                        (contact_id, purpose_id, state, notice_version, source, changed_at, event_id)
                    SELECT contact_id, purpose_id,
                           CASE action WHEN 'withdraw' THEN 'withdrawn' ELSE 'granted' END,
                           notice_version, source, occurred_at, id
                    FROM consent_event
                    """
                )
            )
        with step("suppression: every other blocked-or-suppressed identity"):
            conn.execute(
                text(
                    """
                    INSERT INTO suppression (hash, reason, created_at)
                    SELECT external_hash, :m, now() FROM contact_identity
                    WHERE contact_id % 20 = 19 AND (contact_id / 20) % 2 = 1
                    """
                ),
                params,
            )
        for table in ("contact", "contact_identity", "consent_event"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), greatest(:n, 1))"), params
            )


def vacuum_analyze(engine: Engine) -> None:
    # VACUUM sets the visibility map, without which PostgreSQL cannot use index-only scans.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in TABLES:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
        # Write the freshly seeded pages out now rather than under the first timed runs.
        try:
            conn.exec_driver_sql("CHECKPOINT")
        except DBAPIError:  # needs superuser or pg_checkpoint; only steadier timings are lost
            log("  (no CHECKPOINT: not allowed for this role)")


def check_hashes(session: Session, n: int) -> None:
    """The SQL-computed hashes must be what the product computes, or suppression is moot."""
    rows = session.execute(
        text(
            """
            SELECT ci.external_id, ci.external_hash, s.hash IS NOT NULL AS suppressed
            FROM contact_identity ci LEFT JOIN suppression s ON s.hash = ci.external_hash
            WHERE ci.contact_id IN (1, 39, :n)
            """
        ),
        {"n": n},
    ).all()
    for row in rows:
        if secrets.identity_hash(session, CHANNEL, row.external_id) != row.external_hash:
            fail(f"seeded external_hash of {row.external_id} is not identity_hash()")
    if n >= 39 and not any(r.suppressed for r in rows):
        fail("contact 39 should be suppressed")


# --- what is timed -------------------------------------------------------------------------

FLOOR_SQL = """
SELECT cs.contact_id
FROM consent_state cs
JOIN contact_identity ci ON ci.contact_id = cs.contact_id
WHERE cs.purpose_id = %(p)s AND cs.state = 'granted'
  AND ci.channel = 'line' AND ci.blocked_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM suppression s WHERE s.hash = ci.external_hash)
"""


def floor_query(engine: Engine, purpose_id: int) -> set[int]:
    """The bare set-based SQL on the driver's cursor: the floor the gate is compared with."""
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(FLOOR_SQL, {"p": purpose_id})
        result = {row[0] for row in cur.fetchall()}
        conn.rollback()
        return result
    finally:
        conn.close()


def gate(engine: Engine, contact_ids: Any) -> set[int]:
    with Session(engine) as session:
        return consent.allowed(session, contact_ids, purpose=PURPOSE, channel=CHANNEL)


def one_query_each(engine: Engine, ids: list[int], purpose_id: int, lawful_basis: str) -> int:
    """The baseline: the same gate, asked about one contact per query (the statement is
    compiled once and cached, as a per-contact loop in the product would be)."""
    stmt = allowed_select(
        lambda col: col == bindparam("cid"), purpose_id=purpose_id, lawful_basis=lawful_basis, channel=CHANNEL
    )
    passed = 0
    with engine.connect() as conn:
        for cid in ids:
            passed += len(conn.execute(stmt, {"cid": cid}).scalars().all())
    return passed


def explain(engine: Engine, purpose_id: int, lawful_basis: str) -> None:
    """The plan of the gate's query for the selectable input (allowed() wraps it in ARRAY_AGG)."""
    stmt = allowed_select(
        lambda col: col.in_(select(Contact.id).scalar_subquery()),
        purpose_id=purpose_id, lawful_basis=lawful_basis, channel=CHANNEL,
    )
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").scalars().all()
    log("[bold]EXPLAIN ANALYZE[/bold] of the gate's query:")
    log("\n".join(plan), markup=False)


def check(name: str, got: set[int], want: set[int]) -> None:
    if not all(type(i) is int for i in itertools.islice(got, 100)):
        fail(f"{name}: allowed() must return a set of int ids")
    if got != want:
        fail(
            f"{name}: {len(got):,} allowed, expected {len(want):,} "
            f"({len(got - want):,} wrongly allowed, {len(want - got):,} wrongly refused)"
        )


# --- main ----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=(
            "The database is TOOLKIT_DATABASE_URL (PostgreSQL only; migrated if needed). "
            "WARNING: the benchmark TRUNCATEs contact, contact_identity, consent_event, "
            "consent_state and suppression (CASCADE) and seeds its own rows; it refuses when "
            "those tables hold other data, unless --reset. Use a database of its own, e.g. "
            "`psql -c 'create database bench'` and TOOLKIT_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench."
        ),
    )
    parser.add_argument("--contacts", type=int, default=DEFAULT_CONTACTS, help="contacts to seed (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure after one warm-up (default 5)")
    parser.add_argument(
        "--sample", type=int, default=DEFAULT_SAMPLE, help="contacts checked one query each for the baseline (default 10,000)"
    )
    parser.add_argument(
        "--reset", action="store_true", help="truncate the benchmark's tables even if they hold data it did not seed"
    )
    parser.add_argument("--reseed", action="store_true", help="seed again even if the data is already there")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of the gate's query to stderr"
    )
    args = parser.parse_args(argv)
    if args.contacts < 20:
        parser.error("--contacts must be at least 20")
    if args.runs < 1:
        parser.error("--runs must be at least 1 (DESIGN.md figures use 3 or more)")
    args.sample = max(1, min(args.sample, args.contacts))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    n = args.contacts
    url = os.environ.get("TOOLKIT_DATABASE_URL") or get_settings().database_url
    if not url.startswith("postgresql"):
        fail(f"TOOLKIT_DATABASE_URL must be a PostgreSQL database of its own (got {url.split(':')[0]})", 2)
    engine = make_engine(url)
    log(f"database: {engine.url.render_as_string(hide_password=True)}")

    with step("migrating (no-op when at head) and syncing purposes"):
        migrate.upgrade(engine)
        with Session(engine) as session:
            consent.sync_from_config(session, None)
            key = secrets.get_secret(session, secrets.SUPPRESSION_KEY).encode()
            purpose = consent.get_purpose(session, PURPOSE)
            purpose_id, lawful_basis, notice_version = purpose.id, purpose.lawful_basis, purpose.notice_version
            session.commit()

    if args.reseed or not seeded_matches(engine, n, purpose_id, key):
        foreign = {t: c for t, c in foreign_rows(engine).items() if c}
        if foreign and not args.reset:
            found = ", ".join(f"{c:,} in {t}" for t, c in foreign.items())
            fail(f"the database holds rows this benchmark did not seed ({found}); pass --reset to truncate them", 2)
        with step(f"seeding {n:,} contacts"):
            seed(engine, n, purpose_id, notice_version, key)
        with step("VACUUM ANALYZE"):
            vacuum_analyze(engine)
    else:
        log(f"reusing the {n:,} contacts already seeded (--reseed to seed again)")

    with Session(engine) as session:
        check_hashes(session, n)
    want = expected_allowed(n)
    all_ids = select(Contact.id)
    with engine.connect() as conn:
        id_list = list(conn.execute(all_ids).scalars())
    rng = random.Random(20261126)
    sample = rng.sample(id_list, args.sample)
    want_sample = sum(1 for i in sample if i in want)

    if args.explain:
        explain(engine, purpose_id, lawful_basis)
    load_before = os.getloadavg()[0]
    log(
        f"[bold]allowed(select(Contact.id))[/bold], [bold]allowed(list of {n:,} ids)[/bold] and "
        "[bold]the bare SQL floor[/bold], taking turns"
    )
    timings = time_interleaved(
        {
            "selectable": lambda: gate(engine, all_ids),
            "list": lambda: gate(engine, id_list),
            "floor": lambda: floor_query(engine, purpose_id),
        },
        runs=args.runs,
    )
    selectable, listed, floor = timings["selectable"], timings["list"], timings["floor"]
    check("allowed(selectable)", selectable.result, want)
    check("allowed(list)", listed.result, want)
    check("bare SQL", floor.result, want)

    log(f"[bold]baseline[/bold]: one query per contact on {args.sample:,} random contacts")
    warm_ids = sample[: min(SAMPLE_WARMUP, len(sample))]
    one_query_each(engine, warm_ids, purpose_id, lawful_basis)  # warm-up on a slice
    per_contact = time_runs(
        lambda: one_query_each(engine, sample, purpose_id, lawful_basis), runs=args.runs, warmup=0, label="per-contact"
    )
    if per_contact.result != want_sample:
        fail(f"per-contact baseline: {per_contact.result:,} allowed in the sample, expected {want_sample:,}")
    scale = n / args.sample
    baseline_value = per_contact.median * scale
    baseline = f"one query per contact ({args.sample:,} sampled, x{scale:g})"

    common = {
        "contacts": n,
        "allowed": len(want),
        "purpose": PURPOSE,
        "channel": CHANNEL,
        "runs": args.runs,
        "warmup": 1,
        "baseline_sample": args.sample,
        "baseline_sample_s": [round(r, 4) for r in per_contact.runs],
        "baseline_warmup": f"one run over {len(warm_ids):,} of the sampled contacts",
        "cpus": os.cpu_count(),
        # 1-minute load average before and after the timings: above the core count, the
        # machine was shared and every figure (the floor too) is inflated alike.
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    m = f"{n // 1_000_000}m" if n % 1_000_000 == 0 else str(n)
    target = f"< {TARGET_S:g} s" if n == DEFAULT_CONTACTS else None  # the target is for 1M contacts
    emit(
        benchmark=BENCHMARK,
        metric=f"allowed_select_{m}",
        value=selectable.median,
        unit="s",
        baseline=baseline,
        baseline_value=baseline_value,
        target=target,
        params={**common, "input": "select(Contact.id)", **selectable.params(),
                "floor_s": round(floor.median, 4), "vs_floor": round(selectable.median / floor.median, 2)},
    )
    emit(
        benchmark=BENCHMARK,
        metric=f"allowed_list_{m}",
        value=listed.median,
        unit="s",
        baseline=baseline,
        baseline_value=baseline_value,
        target=target,
        params={**common, "input": f"list of {n:,} ints", **listed.params(),
                "floor_s": round(floor.median, 4), "vs_floor": round(listed.median / floor.median, 2)},
    )
    emit(
        benchmark=BENCHMARK,
        metric=f"bare_sql_floor_{m}",
        value=floor.median,
        unit="s",
        baseline=baseline,
        baseline_value=baseline_value,
        target=None,
        params={**common, "input": "hand-written join + anti-join, no contact-id restriction, driver cursor",
                **floor.params()},
    )
    log(f"total {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
