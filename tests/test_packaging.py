"""The wheel carries all the product reads at run time: installed into a virtualenv of its
own and run from an empty directory (no checkout on any path, no network), `toolkit`
migrates, imports an FAQ bank and answers from it, and seeds the demo brand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from toolkit import migrate
from toolkit.settings import REPO_ROOT

# What pyproject.toml builds the wheel from; the copy keeps the checkout's build/ and
# egg-info (stale files from earlier builds) out of the wheel, and the checkout clean.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "NOTICE", "toolkit")
BANK = [
    {"id": "P1", "question": "運費怎麼計算？滿多少免運？", "answer": "滿 NT$990 免運費。", "category": "配送",
     "alt_questions": ["運費多少", "免運門檻"]},
    {"id": "P2", "question": "退貨要怎麼申請？", "answer": "七天內在「我的訂單」申請退貨。", "category": "退換貨"},
    {"id": "P3", "question": "會員點數可以怎麼使用？", "answer": "每 1 點折抵 1 元。", "category": "會員"},
]


def run(args: list[str], *, cwd: Path, env: dict[str, str], input: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, input=input, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def build_wheel(tmp_path: Path, env: dict[str, str]) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO_ROOT / name, source / name)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(dist), str(source)], cwd=tmp_path, env=env)
    return next(dist.glob("social_ops_toolkit-*.whl"))


def install(wheel: Path, target: Path, env: dict[str, str]) -> Path:
    """A new venv with only the wheel installed; the dependencies are seen through a .pth
    naming the project venv's site-packages, which the venv's own site-packages precede,
    so `toolkit` comes from the wheel (asserted by the caller)."""
    venv.create(target, with_pip=False)  # the project's pip installs into it (--python)
    python = target / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         str(wheel)], cwd=target, env=env)
    return target / "bin"


@pytest.mark.slow
def test_the_installed_wheel_migrates_answers_and_seeds_the_demo(tmp_path: Path) -> None:
    # Nothing of the checkout may leak in: no PYTHONPATH, no settings file or config dir.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "PYTHON", "PIP_"))}
    offline = base | {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    bin_dir = install(build_wheel(tmp_path, offline), tmp_path / "venv", offline)
    empty = tmp_path / "cwd"
    empty.mkdir()
    env = offline | {"TOOLKIT_ENV": "test", "TOOLKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'installed.db'}"}

    located = run([str(bin_dir / "python"), "-c", "import toolkit; print(toolkit.__file__)"], cwd=empty, env=env)
    assert Path(located.stdout.strip()).is_relative_to(tmp_path / "venv")

    upgraded = run([str(bin_dir / "toolkit"), "db", "upgrade"], cwd=empty, env=env)
    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert upgraded.stderr.strip().splitlines()[-1].startswith(f"database at {head};")

    bank = tmp_path / "bank.jsonl"
    bank.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in BANK), encoding="utf-8")
    imported = run([str(bin_dir / "toolkit"), "faq", "import", str(bank)], cwd=empty, env=env)
    assert imported.stderr.strip().splitlines()[-1].startswith("3 created")

    matched = run([str(bin_dir / "toolkit"), "faq", "match", "--queries", "-", "--out", "-"], cwd=empty, env=env,
                  input='{"query": "運費多少"}\n')
    assert [(r["entry_id"], r["answered"]) for r in map(json.loads, matched.stdout.splitlines())] == [("P1", True)]

    # The demo reads the packaged purposes and its FAQ bank from the package too.
    demo_env = env | {"TOOLKIT_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "TOOLKIT_DATA_DIR": str(tmp_path / "data")}
    seeded = run([str(bin_dir / "toolkit"), "demo", "--seed-only"], cwd=empty, env=demo_env)
    assert "admin@demo.example" in seeded.stdout
    listed = run([str(bin_dir / "toolkit"), "faq", "list", "--limit", "1"], cwd=empty, env=demo_env)
    shown, total = listed.stderr.strip().splitlines()[-1].split(" of ")
    assert (shown, int(total) >= 100) == ("1", True)
