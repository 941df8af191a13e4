"""`toolkit faq`: the FAQ bank the chatbot answers from — import, match, calibrate, list, export."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.table import Table

from toolkit.chatbot import Example, FaqIndex, calibrate, evaluate, example_files, expand, importer, service
from toolkit.chatbot.decision import Decision
from toolkit.kit.importing import BATCH_ROWS, import_in_batches, progress_bar, summary
from toolkit.db import session_scope
from toolkit.kit.errors import InvalidInput
from toolkit.kit.tabular import UnusableFile
from toolkit.llm.client import LlmClient
from toolkit.settings import get_settings

app = typer.Typer(help="The FAQ bank the LINE chatbot answers from.", no_args_is_help=True)

# Fewer labelled examples than this say too little to move the decision.
MIN_EXAMPLES = 5
STDIO = "-"


def pad(text: str, width: int) -> str:
    """`text` cut or padded to `width` terminal columns (a CJK character takes two)."""
    text = set_cell_size(text, width) if cell_len(text) > width else text
    return text + " " * (width - cell_len(text))


@app.command("import")
def import_entries(
    file: Annotated[Path, typer.Argument(
        help="CSV or JSONL with id, question, answer and optional category, alt_questions (JSON list, or "
             "a|b|c in CSV), locale, active")],
    actor: Annotated[str, typer.Option("--actor", help="Who imports (for the audit log)")] = "cli",
) -> None:
    """Import or update entries by id. Exit 0: all imported; 1: some rows rejected; 2: unusable file."""
    source = importer.inspect_file(file)
    run = importer.ImportRun(actor=actor, file=file.name)
    import_in_batches(importer.read_rows(source), lines=source.lines, add=run.add)
    report = run.report
    with session_scope() as session:
        importer.record_summary(session, report=report, file=file.name, actor=actor)
    for line, problem in report.problems():
        typer.echo(f"{file.name}:{line}: {problem}", err=True)
    typer.echo(summary(report.as_dict()), err=True)
    if report.rejected:
        raise typer.Exit(1)


@contextmanager
def output(path: Path) -> Iterator[TextIO]:
    """Standard output for "-"; else a file that appears complete or not at all."""
    if str(path) == STDIO:
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            yield handle
        os.replace(partial, path)
    except OSError as exc:
        raise UnusableFile(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        partial.unlink(missing_ok=True)


def current_index() -> FaqIndex:
    # The index is immutable and needs no session once built: the transaction ends here.
    with session_scope() as session:
        return service.current_index(session)


@app.command()
def match(
    queries: Annotated[Path, typer.Option("--queries", help='JSONL, one {"query": ...} a line ("-": stdin)')],
    out: Annotated[Path, typer.Option("--out", help='JSONL results, one a query line in order ("-": stdout)')],
) -> None:
    """Match queries against the active entries with the current decision.

    Writes {"query", "entry_id", "score", "answered"} for every query line (entry_id is null
    when the bot would not answer). A bad line still gets an output line (not answered) and
    is reported on stderr; then the exit code is 1. Blank lines are skipped."""
    lines = example_files.read_text_lines(queries)
    index = current_index()
    name = queries.name or STDIO
    bad: list[tuple[int, str]] = []
    answered = 0
    with output(out) as handle, progress_bar("matching") as progress:
        task = progress.add_task("match", total=len(lines))
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            query, problem = example_files.parse_query_line(text)
            if problem is None and query is not None:
                result = index.match(query)
                entry_id, score, ok = result.entry_id, round(float(result.score), 6), bool(result.answered)
            else:
                bad.append((number, problem or "bad line"))
                entry_id, score, ok = None, 0.0, False
            answered += ok
            handle.write(json.dumps({"query": query, "entry_id": entry_id, "score": score, "answered": ok},
                                    ensure_ascii=False) + "\n")
            if number % 64 == 0:
                progress.update(task, completed=number)
        progress.update(task, completed=len(lines))
    for number, reason in bad:
        typer.echo(f"{name}:{number}: bad line: {reason}", err=True)
    matched = sum(1 for t in lines if t.strip())
    typer.echo(f"{matched} queries over {len(index)} entries: {answered} answered, "
               f"{matched - answered - len(bad)} not answered, {len(bad)} bad lines", err=True)
    if bad:
        raise typer.Exit(1)


def rates_table(previous: dict[str, Any], fitted: dict[str, Any], *, dry_run: bool) -> Table:
    table = Table(title="FAQ decision on the examples" + (" (dry run: not stored)" if dry_run else ""))
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("calibrated", justify="right")
    for key, label in (("examples", "examples"), ("in_scope", "in scope"), ("out_of_scope", "out of scope"),
                       ("top1", "right entry first"), ("answered_correct", "answered correctly (in scope)"),
                       ("answered_wrong_entry", "answered wrong entry (in scope)"),
                       ("in_scope_rejected", "not answered (in scope)"),
                       ("oos_rejected", "rejected (out of scope)"), ("wrong", "wrong answers (all)"),
                       ("rejected", "not answered (all)"), ("threshold", "threshold")):
        before, after = previous[key], fitted[key]
        if isinstance(after, float):
            table.add_row(label, f"{before:.3f}" if key == "threshold" else f"{before:.1%}",
                          f"{after:.3f}" if key == "threshold" else f"{after:.1%}")
        else:
            table.add_row(label, str(before), str(after))
    return table


def fit(index: FaqIndex, examples: list[Example]) -> tuple[Decision, dict[str, Any]]:
    """The calibrated decision and its report: its rates on the examples, and the rates
    of the decision it replaces on the same examples."""
    decision = calibrate(index, examples)
    fitted = {**decision.meta["report"], "threshold": decision.threshold}
    previous = {**evaluate(index, examples).as_dict(), "threshold": index.decision.threshold}
    return decision, {**fitted, "previous": previous}


@app.command("calibrate")
def calibrate_decision(
    examples: Annotated[Path, typer.Option("--examples", help='JSONL lines {"query", "expected_id" or null}')],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the rates without storing the decision")] = False,
    actor: Annotated[str, typer.Option("--actor", help="Who calibrates (for the audit log)")] = "cli",
) -> None:
    """Fit the answer-or-not decision to the brand's labelled examples and store it.

    Exit 0: calibrated; 1: calibrated, but some lines were rejected (reported on stderr);
    2: no usable file or too few usable examples."""
    index = current_index()
    if not len(index):
        raise InvalidInput("the FAQ bank has no active entries; import some first")
    usable, rejected = example_files.read_examples(examples, {e.id for e in index.entries})
    for line, reason in rejected:
        typer.echo(f"{examples.name}:{line}: rejected: {reason}", err=True)
    if not usable:
        raise UnusableFile(f"{examples}: no usable example")
    if len(usable) < MIN_EXAMPLES:
        raise InvalidInput(f"{examples}: only {len(usable)} usable example(s); at least {MIN_EXAMPLES} are needed")
    labelled = [Example(e.query, e.expected_id) for e in usable]
    decision, report = fit(index, labelled)
    report["rejected_lines"] = len(rejected)
    if not dry_run:
        with session_scope() as session:
            service.save_calibration(session, decision=decision, report=report, examples=len(labelled),
                                     source=examples.name, actor=actor)
    Console().print(rates_table(report["previous"], report, dry_run=dry_run))
    aim = decision.meta.get("min_oos_rejection", 0.0)
    if report["out_of_scope"] and report["oos_rejected"] < aim:
        typer.echo(f"warning: the calibrated decision rejects {report['oos_rejected']:.0%} of the out-of-scope "
                   f"examples, less than the {aim:.0%} aimed at", err=True)
    typer.echo(f"{len(labelled)} examples, {len(rejected)} rejected; decision "
               f"{'not stored (dry run)' if dry_run else 'stored'}", err=True)
    if rejected:
        raise typer.Exit(1)


@app.command("list")
def list_entries(
    search: Annotated[str | None, typer.Option("--search", help="Text in the id, question or answer")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
) -> None:
    """List entries by id: id, category, version, question."""
    with session_scope() as session:
        rows, total = service.list_entries(session, search=search, category=category, limit=limit)
        for entry in rows:
            flag = "" if entry.active else "  (inactive)"
            typer.echo(f"{pad(entry.key, 20)}  {pad(entry.category, 16)}  v{entry.version:<3}  {entry.question}{flag}")
    typer.echo(f"{len(rows)} of {total}", err=True)


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help='JSONL in the import format ("-": stdout)')],
) -> None:
    """Write every entry (inactive ones too) as JSONL that `toolkit faq import` reads back."""
    written = 0
    with output(file) as handle, session_scope() as session:
        while True:
            rows, _ = service.list_entries(session, limit=BATCH_ROWS, offset=written)
            for entry in rows:
                handle.write(importer.export_line(entry) + "\n")
            written += len(rows)
            if len(rows) < BATCH_ROWS:
                break
    typer.echo(f"{written} entries exported", err=True)


# --- with the configured LLM (only the brand's entry texts are sent) ---------------------

def batch_llm() -> LlmClient:
    """The configured LLM with a few retries (LlmNotConfigured: exit 2 with one line)."""
    return LlmClient.from_settings(get_settings(), max_retries=2, cool_down=False)


@app.command("expand")
def expand_entries(
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many entries")] = None,
    per_entry: Annotated[int, typer.Option("--per-entry", min=1, max=20, help="Generated questions per entry")] = 5,
) -> None:
    """Draft colloquial alternative questions for each active entry with the LLM (stored as generated).

    Entries that already have --per-entry generated questions are skipped. Exit 0: done; 1: some
    entries failed (reported; the rest are stored); 2: no LLM configured."""
    with batch_llm() as client, progress_bar("expanding") as progress:
        task = progress.add_task("expand", total=None)
        report = expand.expand_all(client, session_scope, per_entry=per_entry, limit=limit,
                                   on_plan=lambda total: progress.update(task, total=total),
                                   on_entry=lambda key, added: progress.advance(task))
    for key, reason in report.failed:
        typer.echo(f"{key}: failed: {reason}", err=True)
    typer.echo(summary(report.as_dict()), err=True)
    if report.added:
        typer.echo("the changed entries are embedded again by `toolkit faq embed` (or by the bot, a few at a time)",
                   err=True)
    if report.failed:
        raise typer.Exit(1)


@app.command("embed")
def embed_entries() -> None:
    """Embed the active entries' questions with the LLM's embedding model (what changed since last time).

    Exit 0: done; 1: some entries failed; 2: no LLM configured."""
    with batch_llm() as client, progress_bar("embedding") as progress:
        task = progress.add_task("embed", total=None)
        report = expand.embed_all(client, session_scope, on_plan=lambda total: progress.update(task, total=total),
                                  on_batch=lambda done: progress.advance(task, done))
    for key, reason in report.failed:
        typer.echo(f"{key}: failed: {reason}", err=True)
    typer.echo(summary(report.as_dict()), err=True)
    if report.failed:
        raise typer.Exit(1)
