"""Who is asking, in which role, for which purpose, in which trace: the facts of one request."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated partner system; the organisation comes from the token, never the body."""

    organisation: str
    client_id: str
    token_id: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class TraceContext:
    """W3C Trace Context: the caller's trace continued with a span of our own."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    flags: str = "01"

    @classmethod
    def from_header(cls, header: str | None) -> TraceContext:
        """Continue the caller's trace, or start a new one when the header is absent or invalid."""
        span_id = os.urandom(8).hex()
        if header:
            match = _TRACEPARENT.match(header.strip().lower())
            if match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}:
                return cls(match.group(1), span_id, match.group(2), match.group(3))
        return cls(os.urandom(16).hex(), span_id, None)

    @property
    def traceparent(self) -> str:
        """Return the traceparent header value that names our span."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: Principal
    acting_user: str
    role: str
    purpose: str | None
    trace: TraceContext


OPERATOR = "gateway-operator"  # the organisation an operator's command-line access is recorded under


def operator_context(purpose: str) -> RequestContext:
    """Return the context of an operator's command on this machine: the OS user, acting as `operator`."""
    import getpass

    user = getpass.getuser()
    return RequestContext(
        Principal(OPERATOR, f"cli:{user}", "cli", 0), user, "operator", purpose, TraceContext.from_header(None)
    )
