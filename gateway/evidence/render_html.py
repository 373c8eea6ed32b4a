"""HTML renditions of evidence documents, and the jurist pages' templates (Jinja2, autoescaped).

A rendition presents the signed document only (never more facts than it states), embeds the signed
JSON, and is signed itself (see `envelope.py`), so it can be handed on and checked on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from gateway.audit.report import describe_retention
from gateway.evidence.envelope import SignedDocument, embed_script
from gateway.i18n import DEFAULT_LOCALE, N_, Moments, install, translations

# Values shown through `|words|tr`: legal-hold reasons, roles, acknowledgement outcomes, run states.
VALUE_WORDS = (
    N_("objection"),
    N_("appeal"),
    N_("complaint"),
    N_("access request"),
    N_("jurist"),
    N_("privacy officer"),
    N_("received"),
    N_("deleted"),
    N_("kept own basis"),
    N_("completed"),
    N_("running"),
    N_("interrupted"),
    N_("not due"),
    N_("on hold"),
    N_("archive"),
    N_("no retention rule"),
    N_("destroying"),
    N_("destroyed"),
    N_("controller"),
    N_("joint controller"),
    N_("processor"),
    N_("recipient"),
    N_("denied"),
    N_("served under other covenant"),
    N_("legal hold procedure"),
    N_("served under this covenant"),
)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def make_environment(timezone: str, locale: str = DEFAULT_LOCALE) -> Environment:
    """Return the template environment in `locale` (Dutch unless asked otherwise); every value is escaped."""
    env = Environment(
        loader=PackageLoader("gateway.evidence", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install(env, locale, timezone)
    moments = Moments(timezone, locale)

    def moment(format_: Callable[[datetime | None], str]) -> Callable[[str | datetime | None], str]:
        def show(value: str | datetime | None) -> str:
            parsed = _parse(value) if isinstance(value, str) or value is None else value
            return format_(parsed) if parsed else "—"

        return show

    def dash(value: Any) -> Any:
        return "—" if value is None or value == "" else value

    env.filters["when"] = moment(moments.when)
    env.filters["long"] = moment(moments.long)
    env.filters["long_minute"] = moment(moments.long_minute)
    env.filters["last_second"] = moment(lambda m: moments.long(m - timedelta(seconds=1)) if m else "")
    gettext = translations(locale).gettext

    def retention(ground: dict[str, Any]) -> str:
        if not ground.get("duration"):
            return "—"
        return describe_retention("destroy", ground["duration"], ground.get("trigger"), gettext)

    env.filters["parse_moment"] = _parse
    env.globals["retention"] = retention
    env.filters["dash"] = dash
    env.filters["words"] = lambda v: str(v).replace("_", " ") if v is not None else "—"
    return env


class EvidenceRenderer:
    """Jurist pages and document renditions, Dutch; `names` are the configuration's labels for ids."""

    def __init__(self, timezone: str, names: dict[str, str] | None = None) -> None:
        self._env = make_environment(timezone)
        self._env.globals["names"] = dict(names or {})
        self.timezone = timezone

    def document_html(self, signed: SignedDocument, verify_hint: str, keys_url: str = "") -> bytes:
        """Return the HTML rendition of a signed document (without its signature line)."""
        doc = signed.document
        template = f"{doc['type']}.html"
        html = self._env.get_template(template).render(
            d=doc,
            sha256=signed.sha256,
            kid=signed.kid,
            verify_hint=verify_hint,
            keys_url=keys_url,
            embedded=Markup(embed_script(signed)),
        )
        return html.encode()

    def page(self, name: str, **context: Any) -> str:
        """Return a rendered jurist page."""
        return self._env.get_template(name).render(**context)
