"""Text from outside, checked at the boundary: what the database cannot store (NUL, which
PostgreSQL refuses in text and JSON) or what is no text at all (an unpaired surrogate,
which cannot be encoded), and control characters that belong in no field, are refused
there with a 422 saying so — never left to fail as a 500 deep inside a transaction."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

# C0 controls but tab, newline and carriage return; DEL; every surrogate code point (a
# str holds one only when it is unpaired).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
REASON = "contains a control character or an unpaired surrogate (such as NUL), which cannot be stored"


def unstorable(value: str) -> bool:
    return _UNSTORABLE.search(value) is not None


def refuse_unstorable(value: str) -> str:
    if unstorable(value):
        raise ValueError(REASON)
    return value


def refuse_unstorable_in(document: Any) -> Any:
    """The same for every key and string inside a JSON document."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            refuse_unstorable(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return document


def encodable(document: Any) -> Any:
    """A copy of a JSON document that UTF-8 can encode: unpaired surrogates written as
    their escape (\\ud800), for quoting refused input back to whoever sent it."""
    if isinstance(document, str):
        return document.encode("utf-8", "backslashreplace").decode("utf-8") if unstorable(document) else document
    if isinstance(document, dict):
        return {encodable(k): encodable(v) for k, v in document.items()}
    if isinstance(document, list):
        return [encodable(v) for v in document]
    return document


CleanText = Annotated[str, AfterValidator(refuse_unstorable)]
CleanJson = Annotated[dict[str, Any], AfterValidator(refuse_unstorable_in)]
