"""The effective policy of this process: the configuration with the recorded lifecycle facts folded in.

Every gateway process polls the lifecycle version in the database every few seconds and, when it
moved, swaps in a freshly derived `CompiledPolicy`. A revocation or mandate withdrawal is recorded at
least a propagation margin (several poll intervals) before it takes effect, so every process knows
the moment before it arrives and the decision is exact to the second. The decision itself stays a
pure function of the policy it is handed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from gateway.lifecycle.model import NO_FACTS, LifecycleFacts
from gateway.lifecycle.repository import current_version, load_facts
from gateway.policies.compiled import CompiledPolicy
from gateway.store.db import Database

log = structlog.get_logger("gateway.lifecycle")


class PolicyHolder:
    """Holds the current effective policy; `current` is one immutable snapshot, swapped atomically."""

    def __init__(self, base: CompiledPolicy, db: Database | None = None, poll_seconds: float = 2.0) -> None:
        self.base = base
        self._db = db
        self._poll = poll_seconds
        self._current = base
        self._version = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hooks: list[Callable[[], None]] = []

    @property
    def current(self) -> CompiledPolicy:
        """Return the effective policy in force in this process now."""
        return self._current

    @property
    def facts(self) -> LifecycleFacts:
        """Return the lifecycle facts folded into the current policy."""
        return self._current.lifecycle

    def apply(self, facts: LifecycleFacts) -> CompiledPolicy:
        """Swap in the policy derived from `facts` (for tests and rehearsals without polling); return it."""
        with self._lock:
            self._current = self.base if facts is NO_FACTS else self.base.with_lifecycle(facts)
            self._version = facts.version
            return self._current

    def refresh(self, force: bool = False) -> bool:
        """Reload the lifecycle facts when their version moved (or always with `force`); return whether it did."""
        if self._db is None:
            return False
        if not force and current_version(self._db) == self._version:
            return False
        facts = load_facts(self._db)
        self.apply(facts)
        log.info("lifecycle.policy.swapped", lifecycle_version=self._current.lifecycle_version)
        return True

    def add_poll_hook(self, hook: Callable[[], None]) -> None:
        """Run `hook` on every poll (e.g. to follow a rehearsal clock stepped by another process)."""
        self._hooks.append(hook)

    def start(self) -> None:
        """Load the facts now and poll for changes in a background thread."""
        self.refresh(force=True)
        if self._db is None or self._poll <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="lifecycle-poll", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.refresh()
                for hook in self._hooks:
                    hook()
            except Exception as exc:  # keep the last policy; the audit store fails closed on its own
                log.warning("lifecycle.poll.failed", error=type(exc).__name__)

    def close(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
