"""Validating sandbox answers against LINE's own OpenAPI file (the copy in specs/)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jsonschema_rs
import yaml

from toolkit.settings import REPO_ROOT

SPEC_PATH = REPO_ROOT / "specs" / "line-openapi" / "messaging-api.yml"


@lru_cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@lru_cache
def _validator(ref: str) -> Any:
    # The whole document rides along so that "#/components/schemas/..." refs resolve.
    return jsonschema_rs.Draft4Validator({"$ref": ref, "components": spec()["components"]})


def response_ref(path: str, method: str, status: int) -> str | None:
    """The schema LINE documents for this answer; its ErrorResponse for undocumented errors."""
    responses = spec()["paths"][path][method.lower()]["responses"]
    documented = responses.get(str(status))
    if documented is None:
        return "#/components/schemas/ErrorResponse" if status >= 400 else None
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    return schema["$ref"] if schema else None


def assert_matches_spec(path: str, method: str, status: int, body: Any) -> None:
    ref = response_ref(path, method, status)
    assert ref is not None, f"{method} {path} {status}: no JSON schema in the spec"
    errors = [f"{e.instance_path}: {e.message}" for e in _validator(ref).iter_errors(body)]
    assert not errors, f"{method} {path} {status} does not match {ref}: {errors}"
