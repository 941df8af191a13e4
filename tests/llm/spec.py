"""Validating the fake's answers and our client's requests against OpenAI's OpenAPI file
(the subset in specs/openai-openapi/)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jsonschema_rs
import yaml

from toolkit.settings import REPO_ROOT

SPEC_DIR = REPO_ROOT / "specs" / "openai-openapi"
SPEC_PATH = SPEC_DIR / "openapi-subset.yaml"


@lru_cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _nullable(node: Any) -> Any:
    """OpenAI's 3.1 file still marks some fields `nullable: true` (OpenAPI 3.0's keyword,
    which JSON Schema ignores), e.g. a stream chunk's finish_reason: null is documented
    there and sent by OpenAI. Read it as "or null"."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable(value) for key, value in node.items()}
    if node.pop("nullable", False) is True:
        return {"anyOf": [node, {"type": "null"}]}
    return node


@lru_cache
def _validator(ref: str) -> Any:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; the components ride along for $refs.
    return jsonschema_rs.Draft202012Validator({"$ref": ref, "components": _nullable(spec()["components"])})


def _operation(path: str) -> dict[str, Any]:
    return spec()["paths"][path]["post"]


def _json_schema_ref(content: dict[str, Any], media: str = "application/json") -> str:
    return content["content"][media]["schema"]["$ref"]


def errors(ref: str, body: Any) -> list[str]:
    return [f"{e.instance_path}: {e.message}" for e in _validator(ref).iter_errors(body)]


def assert_request_matches(path: str, body: Any) -> None:
    ref = _json_schema_ref(_operation(path)["requestBody"])
    problems = errors(ref, body)
    assert not problems, f"request to {path} does not match {ref}: {problems}"


def assert_response_matches(path: str, status: int, body: Any, media: str = "application/json") -> None:
    response = _operation(path)["responses"][str(status)]
    if "$ref" in response:  # e.g. #/components/responses/TooManyRequests
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    ref = _json_schema_ref(response, media)
    problems = errors(ref, body)
    assert not problems, f"{status} from {path} does not match {ref}: {problems}"
