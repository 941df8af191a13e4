"""Cut openapi.yaml down to what the toolkit talks to: POST /embeddings and POST
/chat/completions, with every component they reference (transitively).

    python specs/openai-openapi/subset.py UPSTREAM/openapi.yaml > specs/openai-openapi/openapi-subset.yaml
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

PATHS = ("/embeddings", "/chat/completions")


def subset(spec: dict[str, Any]) -> dict[str, Any]:
    paths = {path: {"post": spec["paths"][path]["post"]} for path in PATHS}
    needed: dict[tuple[str, str], Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                    _, _, kind, name = value.split("/")
                    if (kind, name) not in needed:
                        needed[(kind, name)] = spec["components"][kind][name]
                        walk(needed[(kind, name)])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(paths)
    components: dict[str, dict[str, Any]] = {}
    for (kind, name), value in sorted(needed.items()):
        components.setdefault(kind, {})[name] = value
    return {"openapi": spec["openapi"], "info": spec["info"], "servers": spec["servers"], "paths": paths,
            "components": components}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        upstream = yaml.safe_load(handle)
    sys.stdout.write(yaml.safe_dump(subset(upstream), allow_unicode=True, sort_keys=False, width=100))
