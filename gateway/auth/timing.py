"""Which clock times tokens, said in the refusals it causes.

Token timing (client assertions, the jti replay cache, access-token iat/exp/nbf, signing-key
rotation, rate limits) runs on real time, also in demo and rehearsal mode: partner systems sign on
real time and cannot follow a simulated clock. Covenant standing runs on the policy clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.clock import Clock, SystemClock

TIME_CLAIMS = ("exp", "iat", "nbf")


def checked_against(clock: Clock) -> str:
    """Return the phrase that names the token clock and its now, for a failed time check."""
    name = "real time" if isinstance(clock, SystemClock) else "token clock"
    at = datetime.fromtimestamp(int(clock.timestamp()), UTC).isoformat().replace("+00:00", "Z")
    return f"checked against the gateway's {name} {at}"


def is_time_failure(reason: str) -> bool:
    """Return whether a token refusal reason is a failed time check (exp, iat or nbf)."""
    # joserfc: "expired_token exp", "invalid_claim iat" (issued in the future); ours: "expired", "not yet valid".
    timed = ("claims: expired_token", "claims: invalid_token", *(f"claims: invalid_claim {c}" for c in TIME_CLAIMS))
    return reason in ("expired", "not yet valid") or reason.startswith(timed)
