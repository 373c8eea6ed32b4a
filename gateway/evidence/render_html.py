"""HTML renditions of evidence documents, and the jurist pages' templates (Jinja2, autoescaped).

A rendition presents the signed document only (never more facts than it states), embeds the signed
JSON, and is signed itself (see `envelope.py`), so it can be handed on and checked on its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from gateway.evidence.envelope import SignedDocument, embed_script


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def make_environment(timezone: str) -> Environment:
    """Return the template environment; every value is escaped."""
    env = Environment(
        loader=PackageLoader("gateway.evidence", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    zone = ZoneInfo(timezone)

    def when(value: str | datetime | None) -> str:
        moment = _parse(value) if isinstance(value, str) or value is None else value
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"

    def dash(value: Any) -> Any:
        return "—" if value is None or value == "" else value

    env.filters["when"] = when
    env.filters["dash"] = dash
    env.filters["words"] = lambda v: str(v).replace("_", " ") if v is not None else "—"
    env.globals["tz"] = timezone
    return env


class EvidenceRenderer:
    def __init__(self, timezone: str) -> None:
        self._env = make_environment(timezone)
        self.timezone = timezone

    def document_html(self, signed: SignedDocument, verify_hint: str) -> bytes:
        """Return the HTML rendition of a signed document (without its signature line)."""
        doc = signed.document
        template = f"{doc['type']}.html"
        html = self._env.get_template(template).render(
            d=doc, sha256=signed.sha256, kid=signed.kid, verify_hint=verify_hint, embedded=Markup(embed_script(signed))
        )
        return html.encode()

    def page(self, name: str, **context: Any) -> str:
        """Return a rendered jurist page."""
        return self._env.get_template(name).render(**context)
