"""The configuration files the product ships (the demo brand's), and which file is read.

A brand's own config dir (TOOLKIT_CONFIG_DIR) holds only the files it changes: a file
there wins over the default of the same name, the others come from here. Paths, not
resources: the loaders stat the file to notice an edit, and errors name the file.
"""

from __future__ import annotations

from pathlib import Path

DEFAULTS_DIR = Path(__file__).resolve().parent


def path(name: str, override_dir: Path | None = None) -> Path:
    """The file NAME (relative, e.g. "line.yaml"): the brand's own if it has one."""
    if override_dir is not None and (override_dir / name).is_file():
        return override_dir / name
    return DEFAULTS_DIR / name


def glob(pattern: str, override_dir: Path | None = None) -> list[Path]:
    """The files matching PATTERN, sorted by name; a name the brand's dir has is taken
    from there, so it can replace a shipped file or add one, never drop one."""
    found = {p.relative_to(DEFAULTS_DIR): p for p in DEFAULTS_DIR.glob(pattern) if p.is_file()}
    if override_dir is not None:
        found |= {p.relative_to(override_dir): p for p in override_dir.glob(pattern) if p.is_file()}
    return [found[name] for name in sorted(found)]
