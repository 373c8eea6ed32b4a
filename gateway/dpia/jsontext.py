"""Stable, readable JSON: nested structures one per line, short ones inline (keeps diffs small)."""

from __future__ import annotations

import json
from typing import Any

WIDTH = 110


def dumps(value: Any) -> str:
    """Return `value` as deterministic JSON text ending in a newline."""
    return _render(value, 0) + "\n"


def _render(value: Any, indent: int) -> str:
    compact = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(value, dict | list) or indent + len(compact) <= WIDTH or not value:
        return compact
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_render(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _render(v, indent + 2) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
