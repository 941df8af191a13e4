"""A YAML config file parsed into a pydantic model, again only when the file changed (its
mtime), so that a worker can ask for it every batch and still pick up an edit without a
restart. A file that cannot be read or does not validate raises `error` with one line."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from toolkit.kit.errors import ToolkitError

Model = TypeVar("Model", bound=BaseModel)

_cache: dict[tuple[Path, type], tuple[int, BaseModel]] = {}
_cache_lock = threading.Lock()


def load_yaml_model(path: Path, model: type[Model], *, error: type[ToolkitError]) -> Model:
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise error(f"cannot read {path}: {exc}") from exc
    with _cache_lock:
        cached = _cache.get((path, model))
    if cached is not None and cached[0] == mtime:
        return cached[1]  # type: ignore[return-value]
    try:
        parsed = model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"cannot read {path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise error(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    with _cache_lock:
        _cache[(path, model)] = (mtime, parsed)
    return parsed
