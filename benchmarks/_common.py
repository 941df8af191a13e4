"""Shared helpers for the benchmark scripts (not a benchmark itself: `make bench` skips `_*.py`).

Every benchmark prints one JSON line per figure on stdout, with the keys of DESIGN.md
("Benchmarks"), and everything else (progress, notes) on stderr, so that
`python benchmarks/x.py > results.jsonl` collects only figures.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/x.py` without an install
    sys.path.insert(0, str(REPO_ROOT))

KEYS = ("benchmark", "metric", "value", "unit", "baseline", "baseline_value", "ratio", "target", "params")

console = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")


def log(message: str, *, markup: bool = True) -> None:
    """Progress for the reader, on stderr (markup=False for text with [brackets] of its own)."""
    console.print(message, markup=markup)


@contextmanager
def step(message: str) -> Iterator[None]:
    """Log `message`, run the block, then log how long it took."""
    console.print(f"[bold]{message}[/bold] ...")
    start = time.perf_counter()
    yield
    console.print(f"  done in {time.perf_counter() - start:.2f} s")


@dataclass(frozen=True)
class Timing:
    median: float
    runs: list[float]
    warmup: list[float]
    result: Any  # what the last timed run returned, for correctness checks

    def params(self) -> dict[str, Any]:
        return {"runs_s": [round(r, 4) for r in self.runs], "warmup_s": [round(w, 4) for w in self.warmup]}


def time_runs(fn: Callable[[], T], *, runs: int = 3, warmup: int = 1, label: str = "") -> Timing:
    """Call `fn` `warmup` times untimed, then `runs` times under `time.perf_counter`;
    the figure is the median of the timed runs."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    warm: list[float] = []
    for i in range(warmup):
        start = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - start)
        console.print(f"  {label} warm-up {i + 1}/{warmup}: {warm[-1]:.3f} s")
    timed: list[float] = []
    result: Any = None
    for i in range(runs):
        start = time.perf_counter()
        result = fn()
        timed.append(time.perf_counter() - start)
        console.print(f"  {label} run {i + 1}/{runs}: {timed[-1]:.3f} s")
    return Timing(statistics.median(timed), timed, warm, result)


def time_interleaved(
    fns: dict[str, Callable[[], Any]], *, runs: int = 3, warmup: int = 1
) -> dict[str, Timing]:
    """Like `time_runs` for several functions, taking turns (a, b, c, a, b, c, ...), so
    that when the machine is shared, load that comes and goes falls on all of them alike
    and their ratios stay meaningful."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    warm: dict[str, list[float]] = {name: [] for name in fns}
    timed: dict[str, list[float]] = {name: [] for name in fns}
    results: dict[str, Any] = {}
    for i in range(warmup + runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
            if i < warmup:
                warm[name].append(elapsed)
                console.print(f"  {name} warm-up {i + 1}/{warmup}: {elapsed:.3f} s")
            else:
                timed[name].append(elapsed)
                results[name] = result
                console.print(f"  {name} run {i - warmup + 1}/{runs}: {elapsed:.3f} s")
    return {
        name: Timing(statistics.median(timed[name]), timed[name], warm[name], results[name]) for name in fns
    }


def ratio(baseline_value: float | None, value: float | None) -> float | None:
    """How many times better than the baseline: baseline_value / value (for timings,
    where lower is better)."""
    if not baseline_value or not value:
        return None
    return round(baseline_value / value, 2)


def emit(
    *,
    benchmark: str,
    metric: str,
    value: float,
    unit: str,
    baseline: str | None,
    baseline_value: float | None,
    target: Any,
    params: dict[str, Any],
    ratio_value: float | None = None,
) -> dict[str, Any]:
    """Print one figure as one JSON line on stdout (and return it). `ratio` defaults to
    baseline_value / value."""
    line = {
        "benchmark": benchmark,
        "metric": metric,
        "value": round(value, 4),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": None if baseline_value is None else round(baseline_value, 4),
        "ratio": ratio(baseline_value, value) if ratio_value is None else ratio_value,
        "target": target,
        "params": params,
    }
    assert tuple(line) == KEYS
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return line


def fail(message: str, code: int = 1) -> None:
    """Stop the benchmark with a message on stderr and a non-zero exit."""
    console.print(f"[bold red]error:[/bold red] {message}")
    raise SystemExit(code)


PROTECTED_DATABASES = {"postgres", "template0", "template1", "test", "bench"}


def recreate_database(server: str, name: str) -> str:
    """Drop and create database `name` on the PostgreSQL at `server` (never one of the
    protected ones, nor the test suite's); returns its URL."""
    import psycopg

    if name in PROTECTED_DATABASES or name.startswith("toolkit_test"):
        fail(f"refusing to drop database {name!r}", 2)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"
