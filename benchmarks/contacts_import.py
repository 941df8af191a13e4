"""Contacts import at scale: `toolkit contacts import` of a million contacts with two
purposes on PostgreSQL (target: within 60 s, in flat memory) and of 100,000 on SQLite,
against the per-row path (a savepoint, a suppression check, a status read and a consent
record per row, as every import did before it went set-based) on a sample of the same
file, in the same run.

    python benchmarks/contacts_import.py [--contacts 1000000] [--sqlite-contacts 100000]
                                          [--sample 2000] [--postgres URL] [--database NAME]

Figures (one JSON line each, on stdout):
- contacts_per_s_postgresql / contacts_per_s_sqlite: the whole file through the CLI, with
  the per-row path's contacts/s on the first --sample rows as baseline;
- peak_rss_mb_postgresql: the import process's peak memory at the full size, with the
  same at a tenth of it as baseline (flat memory: a ratio near 1).
Every import is checked: contacts, identities, consent events and states counted against
the file, one audit record per import.

The database named by --database (and that name + "_rows", "_tenth") on the PostgreSQL
server of --postgres is dropped and recreated; never point it at one you care about.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, emit, fail, log, recreate_database, step  # noqa: E402

BENCHMARK = "contacts_import"
PY = sys.executable
PURPOSES = ("marketing.line_push", "service.chat")
NAMES = ("王小明", "陳美玲", "林志豪", "Amy Chen", "張雅婷", "黃建宏", "", "李佳穎")
LOCALES = ("zh-TW", "zh-TW", "en", "")
DECISIONS = ("granted", "granted", "withdrawn", "")
TARGET_PG_S = 60
PER_ROW_BATCH = 500  # the per-row path's commit interval


@dataclass(frozen=True)
class ContactsFile:
    path: Path
    contacts: int
    decisions: int  # non-empty consent cells: the consent events a fresh import writes


def write_file(path: Path, contacts: int) -> ContactsFile:
    """A deterministic CSV of `contacts` distinct LINE ids, names, locales and two purposes."""
    decisions = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(("external_id", "display_name", "locale", *PURPOSES))
        for n in range(contacts):
            push, chat = DECISIONS[n % 4], DECISIONS[(n // 4) % 4]
            decisions += bool(push) + bool(chat)
            name = NAMES[n % len(NAMES)]
            out.writerow((f"U{n:032x}", f"{name}{n}" if name else "", LOCALES[n % 3], push, chat))
    return ContactsFile(path, contacts, decisions)


def head(source: ContactsFile, path: Path, contacts: int) -> ContactsFile:
    return write_file(path, min(contacts, source.contacts))


def environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLKIT_")}
    env.update(TOOLKIT_DATABASE_URL=database_url, TOOLKIT_ENV="development")
    return env


def upgrade(database_url: str) -> None:
    done = subprocess.run([PY, "-m", "toolkit.cli", "db", "upgrade"], env=environment(database_url), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        fail(f"toolkit db upgrade failed: {done.stderr[-2000:]}")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    stderr: str


def timed(command: list[str], database_url: str, timeout_s: float) -> Run:
    """Run a child to completion; its wall time and its own peak memory (wait4's rusage)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=environment(database_url), cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = start + timeout_s
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            child.kill()
            fail(f"{' '.join(command[2:5])} took over {timeout_s:.0f} s")
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode("utf-8", "replace") if child.stderr else ""
    if child.returncode != 0:
        fail(f"{' '.join(command[2:5])} exited {child.returncode}: {stderr[-1500:]}")
    return Run(seconds, usage.ru_maxrss / 1024, stderr)


def bulk_import(source: ContactsFile, database_url: str) -> Run:
    run = timed([PY, "-m", "toolkit.cli", "contacts", "import", str(source.path), "--actor", "bench"],
                database_url, timeout_s=60 + source.contacts / 500)
    expected = f"{source.contacts} created, 0 updated, 0 unchanged, {source.decisions} consent changes"
    if expected not in run.stderr:
        fail(f"the import did not report {expected!r}: {run.stderr[-500:]}")
    return run


def per_row_import(source: ContactsFile, database_url: str) -> Run:
    run = timed([PY, __file__, "_per_row", str(source.path)], database_url, timeout_s=60 + source.contacts / 5)
    report = json.loads(run.stderr.strip().splitlines()[-1])
    if (report["created"], report["consent_changes"]) != (source.contacts, source.decisions):
        fail(f"the per-row path imported {report}, not {source.contacts} contacts and {source.decisions} decisions")
    return run


def _per_row_main(path: str) -> None:
    """(child) Import `path` row by row, PER_ROW_BATCH rows a transaction."""
    from toolkit.consent import service as consent
    from toolkit.contacts import importer
    from toolkit.db import session_scope
    from toolkit.kit import tabular
    from toolkit.kit.importing import import_batches

    with session_scope() as session:
        purposes = {p.code for p in consent.list_purposes(session)}
    source = importer.inspect_file(Path(path), purposes)
    run = importer.ImportRun(purposes=purposes, actor="bench", file=source.path.name, row_by_row=True)
    import_batches(tabular.read_rows(source), lines=source.lines, add_batch=run.add_batch, batch_rows=PER_ROW_BATCH)
    print(json.dumps(run.report.as_dict()), file=sys.stderr)


COUNTS = {
    "contacts": "SELECT count(*) FROM contact",
    "identities": "SELECT count(*) FROM contact_identity",
    "consent_events": "SELECT count(*) FROM consent_event",
    "consent_states": "SELECT count(*) FROM consent_state",
    "import_audit_records": "SELECT count(*) FROM audit_log WHERE action = 'contacts.import'",
    "consent_audit_records": "SELECT count(*) FROM audit_log WHERE action LIKE 'consent.%'",
}


def check(source: ContactsFile, query: Any) -> dict[str, int]:
    """What the import left, against what the file holds."""
    found = {name: query(sql) for name, sql in COUNTS.items()}
    expected = {"contacts": source.contacts, "identities": source.contacts, "consent_events": source.decisions,
                "consent_states": source.decisions, "import_audit_records": 1, "consent_audit_records": 0}
    wrong = {k: (found[k], v) for k, v in expected.items() if found[k] != v}
    if wrong:
        fail(f"the import left (found, expected) {wrong}")
    return found


def postgres_counts(database_url: str) -> Any:
    import psycopg

    def query(sql: str) -> int:
        with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
            return conn.execute(sql).fetchone()[0]

    return query


def sqlite_counts(path: Path) -> Any:
    def query(sql: str) -> int:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchone()[0]

    return query


def measure_postgres(args: argparse.Namespace, full: ContactsFile, tenth: ContactsFile, sample: ContactsFile,
                     ) -> dict[str, Any]:
    server = args.postgres.rstrip("/").replace("postgresql+psycopg://", "postgresql://")
    urls = {}
    for role, suffix in (("full", ""), ("tenth", "_tenth"), ("rows", "_rows")):
        dsn = recreate_database(server, args.database + suffix)
        urls[role] = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        upgrade(urls[role])
    with step(f"PostgreSQL: the per-row path on {sample.contacts:,} contacts"):
        rows = per_row_import(sample, urls["rows"])
    with step(f"PostgreSQL: toolkit contacts import of {tenth.contacts:,} contacts"):
        small = bulk_import(tenth, urls["tenth"])
    with step(f"PostgreSQL: toolkit contacts import of {full.contacts:,} contacts"):
        whole = bulk_import(full, urls["full"])
    with step("checking what it left"):
        counts = check(full, postgres_counts(urls["full"]))
    return {"rows": rows, "small": small, "whole": whole, "counts": counts}


def measure_sqlite(full: ContactsFile, sample: ContactsFile, workdir: Path) -> dict[str, Any]:
    paths = {role: workdir / f"{role}.db" for role in ("full", "rows")}
    for path in paths.values():
        upgrade(f"sqlite:///{path}")
    with step(f"SQLite: the per-row path on {sample.contacts:,} contacts"):
        rows = per_row_import(sample, f"sqlite:///{paths['rows']}")
    with step(f"SQLite: toolkit contacts import of {full.contacts:,} contacts"):
        whole = bulk_import(full, f"sqlite:///{paths['full']}")
    with step("checking what it left"):
        counts = check(full, sqlite_counts(paths["full"]))
    return {"rows": rows, "whole": whole, "counts": counts}


def emit_rate(dialect: str, full: ContactsFile, sample: ContactsFile, result: dict[str, Any], target: Any,
              params: dict[str, Any]) -> None:
    rate = full.contacts / result["whole"].seconds
    per_row = sample.contacts / result["rows"].seconds
    log(f"  {dialect}: {full.contacts:,} in {result['whole'].seconds:.1f} s ({rate:,.0f}/s); per-row path "
        f"{per_row:,.0f}/s")
    emit(benchmark=BENCHMARK, metric=f"contacts_per_s_{dialect}", value=rate, unit="contacts/s",
         baseline=f"the per-row path (savepoint, suppression check, status read, consent record per row) on the "
                  f"file's first {sample.contacts:,} rows", baseline_value=per_row,
         ratio_value=round(rate / per_row, 2), target=target,
         params={**params, "contacts": full.contacts, "consent_decisions": full.decisions,
                 "seconds": round(result["whole"].seconds, 2), "per_row_seconds": round(result["rows"].seconds, 2),
                 "checked": result["counts"]})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts on PostgreSQL (default 1,000,000)")
    parser.add_argument("--sqlite-contacts", type=int, default=100_000, help="contacts on SQLite (default 100,000)")
    parser.add_argument("--sample", type=int, default=2_000, help="rows for the per-row path (default 2,000)")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server (default postgresql://postgres@127.0.0.1:5432)")
    parser.add_argument("--database", default="bench_contacts", help="dropped and recreated (default bench_contacts)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    if min(args.contacts, args.sqlite_contacts, args.sample) < 10:
        parser.error("--contacts, --sqlite-contacts and --sample must be at least 10")
    return args


def main(argv: list[str] | None = None) -> None:
    if (argv or sys.argv[1:])[:1] == ["_per_row"]:
        _per_row_main((argv or sys.argv[1:])[1])
        return
    args = parse_args(argv)
    params = {"cpus": os.cpu_count(), "purposes": list(PURPOSES), "per_row_commit_every": PER_ROW_BATCH}
    with tempfile.TemporaryDirectory(prefix="bench-contacts-") as tmp:
        workdir = Path(tmp)
        with step(f"writing {args.contacts:,} contacts"):
            full = write_file(workdir / "contacts.csv", args.contacts)
            tenth = head(full, workdir / "tenth.csv", max(10, args.contacts // 10))
            sample = head(full, workdir / "sample.csv", args.sample)
        pg = measure_postgres(args, full, tenth, sample)
        emit_rate("postgresql", full, sample, pg, f"{args.contacts:,} contacts within {TARGET_PG_S} s", params)
        emit(benchmark=BENCHMARK, metric="peak_rss_mb_postgresql", value=pg["whole"].peak_rss_mb, unit="MB",
             baseline=f"the same import of {tenth.contacts:,} contacts (a tenth)",
             baseline_value=pg["small"].peak_rss_mb,
             ratio_value=round(pg["whole"].peak_rss_mb / pg["small"].peak_rss_mb, 2),
             target="flat: about the tenth's (ratio near 1)", params={**params, "contacts": full.contacts})
        if not args.no_sqlite:
            small = head(full, workdir / "sqlite.csv", args.sqlite_contacts)
            lite = measure_sqlite(small, sample, workdir)
            emit_rate("sqlite", small, sample, lite, None, params)


if __name__ == "__main__":
    main()
