"""A plain-text progress bar for long runs (no dependency): one line, rewritten in place."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class TextProgress:
    """Call with (done, total); draws `[#####.....]  50%  5000/10000  12.3 s  eta 12 s` at most 5 times a second."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30, every: float = 0.2) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.every = every
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.every:
            return
        self._last = now
        fraction = done / total if total else 1.0
        filled = int(self.width * fraction)
        elapsed = now - self.started
        eta = f"  eta {elapsed / fraction - elapsed:.0f} s" if 0 < fraction < 1 else ""
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%}  {done}/{total}  {elapsed:.1f} s{eta}   ")
        self._drawn = True
        if done >= total:
            self.stream.write("\n")
            self._drawn = False
        self.stream.flush()

    def close(self) -> None:
        """End the line if a bar is still open (an interrupted run)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
