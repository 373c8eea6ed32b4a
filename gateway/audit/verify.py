"""`gateway audit verify DIR`: check an export offline and name the first bad entry.

What is checked, with nothing but the files and the trusted public keys:
- every checkpoint's Ed25519 signature, and that no two signed checkpoints of one size differ
  (a split view: the log showed two histories);
- that the segments hold every entry 1..N with nothing beyond the latest checkpoint;
- the leaf of every entry, recomputed from its bytes, against the leaf the gateway recorded;
- the Merkle root, recomputed from the leaves, at the size of every checkpoint, so consecutive
  checkpoints are consistent by construction (each is a prefix of one recomputed sequence);
- the same against checkpoints kept elsewhere (a witness's or a partner's): a log rewritten and
  re-signed with the gateway's key is caught by any older checkpoint it no longer extends.

Segments are hashed in parallel worker processes; each returns the roots of its aligned perfect
subtrees (its compact range), which the parent joins in order, so the work is split without changing
a single hash. The slow diagnosis that names an entry runs only for a segment that failed.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from gateway.audit.checkpoint import CheckpointError, SignedCheckpoint, VerifierKey, parse, parse_verifier_keys
from gateway.audit.fasthash import leaf_hashes_of_file, leaf_hashes_of_lines, tree_root
from gateway.audit.merkle import EMPTY_ROOT, HASH_SIZE, TreeBuilder, compact_range, join_subtree

_SEGMENT = re.compile(r"^(\d{12})-(\d{12})\.jsonl$")


@dataclass(frozen=True, order=True, slots=True)
class Finding:
    """One thing wrong with the export; `seq` is the first bad entry when it is known."""

    seq: int
    text: str


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    external: int = 0
    seconds: float = 0.0
    keys_from_export: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether nothing was found wrong."""
        return not self.findings

    @property
    def first(self) -> Finding | None:
        """Return the finding about the earliest entry (findings about the whole export come first)."""
        return min(self.findings) if self.findings else None


@dataclass(frozen=True, slots=True)
class Segment:
    entries: Path
    first: int
    last: int
    cuts: tuple[int, ...]  # tree sizes of interest strictly inside (first - 1, last)

    @property
    def leaves(self) -> Path:
        """Return the file of recorded leaf hashes that goes with the entries."""
        return self.entries.with_suffix(".leaves")


@dataclass(frozen=True, slots=True)
class SegmentResult:
    first: int
    last: int
    # For each run between cuts: (tree size at its end, [(subtree root, leaves)]); empty when unusable.
    pieces: tuple[tuple[int, tuple[tuple[bytes, int], ...]], ...]
    finding: Finding | None


def _diagnose(data: bytes, leaves: Sequence[bytes], recorded: bytes | None, first: int, last: int) -> Finding | None:
    """Return the first entry of a segment that is missing, out of place, or not what was recorded."""
    lines = data.split(b"\n")[:-1] if data else []
    for i, line in enumerate(lines):
        expected = first + i
        try:
            seq = orjson.loads(line).get("seq")
        except (orjson.JSONDecodeError, AttributeError):
            return Finding(expected, f"entry {expected} is not a valid log entry (not a JSON object)")
        if expected > last:
            return Finding(last + 1, f"the segment {first}..{last} holds an extra entry (an entry was inserted)")
        if seq != expected:
            return Finding(
                expected,
                f"entry {expected} is not where it should be: its place holds entry {seq} "
                "(an entry was deleted, inserted or moved)",
            )
        if recorded is not None and recorded[HASH_SIZE * i : HASH_SIZE * (i + 1)] != leaves[i]:
            return Finding(expected, f"entry {expected} does not match the leaf hash recorded for it (it was edited)")
    if len(lines) < last - first + 1:
        missing = first + len(lines)
        return Finding(missing, f"entry {missing} is missing (segment {first}..{last} ends early)")
    if recorded is not None and len(recorded) != HASH_SIZE * (last - first + 1):
        return Finding(first, f"the recorded leaf hashes of segment {first}..{last} do not match its entries")
    return None


def verify_segment(segment: Segment) -> SegmentResult:
    """Hash one segment; return its compact-range roots at each cut, or what is wrong with it."""
    leaves = leaf_hashes_of_file(segment.entries)
    recorded = segment.leaves.read_bytes() if segment.leaves.exists() else None
    expected = segment.last - segment.first + 1
    finding: Finding | None = None
    if len(leaves) != expected or (recorded is not None and recorded != b"".join(leaves)):
        # Only a segment that failed is read whole and parsed, to name its first bad entry.
        data = segment.entries.read_bytes()
        if data and not data.endswith(b"\n"):
            data += b"\n"
        finding = _diagnose(data, leaves, recorded, segment.first, segment.last) or Finding(
            segment.first, f"segment {segment.first}..{segment.last} does not hold {expected} entries"
        )
    if len(leaves) != expected:
        return SegmentResult(segment.first, segment.last, (), finding)
    base = segment.first - 1
    bounds = [base, *segment.cuts, segment.last]
    runs = []
    for start, end in itertools.pairwise(bounds):
        roots = tuple((tree_root(leaves[s - base : e - base]), e - s) for s, e in compact_range(start, end))
        runs.append((end, roots))
    return SegmentResult(segment.first, segment.last, tuple(runs), finding)


def diagnose_segment(segment: Segment) -> Finding | None:
    """Return the first entry out of place in a segment (the slow, parsing check)."""
    data = segment.entries.read_bytes()
    leaves = leaf_hashes_of_lines(data) if data.endswith(b"\n") else []
    return _diagnose(data, leaves, None, segment.first, segment.last)


def _load_checkpoints(
    paths: Iterable[Path], keys: Sequence[VerifierKey], report: VerifyReport, where: str
) -> list[SignedCheckpoint]:
    found = []
    for path in paths:
        try:
            signed = parse(path.read_text())
            signed.verify(keys)
        except (CheckpointError, OSError, UnicodeDecodeError) as exc:
            report.findings.append(Finding(0, f"{where} checkpoint {path.name}: {exc}"))
            continue
        found.append(signed)
    return found


def _segments(directory: Path, report: VerifyReport) -> tuple[list[tuple[Path, int, int]], bool]:
    """Return the segment files in order, and whether they hold entries 1..N without gaps or overlaps."""
    tiled_ok = True
    folder = directory / "segments"
    named = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        match = _SEGMENT.match(path.name)
        if not match:
            report.findings.append(Finding(0, f"unexpected file segments/{path.name}"))
            continue
        named.append((path, int(match.group(1)), int(match.group(2))))
    named.sort(key=lambda s: s[1])
    tiled = []
    following = 1
    for path, first, last in named:
        if first > following:
            report.findings.append(
                Finding(following, f"entries {following}..{first - 1} are missing (no segment holds them)")
            )
            tiled_ok = False
        elif first < following or last < first:
            report.findings.append(Finding(first, f"segment {path.name} overlaps another (inserted entries)"))
            tiled_ok = False
            continue
        tiled.append((path, first, last))
        following = last + 1
    return tiled, tiled_ok


def verify_export(
    directory: Path,
    trusted_keys: Sequence[VerifierKey] | None = None,
    external: Sequence[Path] = (),
    jobs: int | None = None,
) -> VerifyReport:
    """Verify an export directory; the report's `first` finding names the first bad entry."""
    started = time.perf_counter()
    report = VerifyReport()
    if trusted_keys is None:
        report.keys_from_export = True
        keys_file = directory / "keys.txt"
        trusted_keys = parse_verifier_keys(keys_file.read_text().splitlines()) if keys_file.exists() else []
    own = _load_checkpoints(sorted((directory / "checkpoints").glob("*.txt")), trusted_keys, report, "exported")
    kept = _load_checkpoints(external, trusted_keys, report, "external")
    report.checkpoints, report.external = len(own), len(kept)
    if len({c.checkpoint.origin for c in own + kept}) > 1:
        report.findings.append(Finding(0, "the checkpoints name more than one log (origin)"))
    roots: dict[int, dict[bytes, str]] = {}
    for signed, where in [(c, "exported") for c in own] + [(c, "kept elsewhere") for c in kept]:
        roots.setdefault(signed.checkpoint.size, {}).setdefault(signed.checkpoint.root, where)
    for size, by_root in sorted(roots.items()):
        if len(by_root) > 1:
            report.findings.append(
                Finding(
                    0,
                    f"split view: {len(by_root)} differently signed trees of size {size} "
                    f"({', '.join(sorted(set(by_root.values())))}); the log showed more than one history",
                )
            )
    segments, tiled = _segments(directory, report)
    total = segments[-1][2] if segments else 0
    report.entries = total
    latest_own = max((c.checkpoint.size for c in own), default=0)
    if total < latest_own:
        report.findings.append(
            Finding(
                total + 1,
                f"entries {total + 1}..{latest_own} are missing: a checkpoint of size {latest_own} is signed "
                "(the export was truncated)",
            )
        )
    elif total > latest_own:
        report.findings.append(
            Finding(latest_own + 1, f"entries {latest_own + 1}..{total} are covered by no signed checkpoint")
        )
    for size in sorted(s for s in roots if s > total):
        report.findings.append(
            Finding(
                total + 1, f"the log was truncated: a checkpoint of size {size} is signed, the export ends at {total}"
            )
        )
    if 0 in roots and EMPTY_ROOT not in roots[0]:
        report.findings.append(Finding(0, "a checkpoint of the empty tree has a root other than the empty root"))
    if not tiled:
        report.seconds = time.perf_counter() - started
        return report
    sizes = sorted(s for s in roots if 0 < s <= total)
    work = [
        Segment(path, first, last, tuple(s for s in sizes if first - 1 < s < last)) for path, first, last in segments
    ]
    _join(work, roots, report, jobs)
    report.seconds = time.perf_counter() - started
    return report


def _map(work: Sequence[Segment], jobs: int | None) -> Iterable[SegmentResult]:
    jobs = min(jobs or os.cpu_count() or 1, len(work))
    if jobs <= 1:
        yield from map(verify_segment, work)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(jobs) as pool:
        yield from pool.imap(verify_segment, work)


def _join(work: Sequence[Segment], roots: dict[int, dict[bytes, str]], report: VerifyReport, jobs: int | None) -> None:
    builder = TreeBuilder()
    usable = True
    previous = 0
    for result in _map(work, jobs):
        if result.finding is not None:
            report.findings.append(result.finding)
        if not result.pieces:
            usable = False
        if not usable:
            continue
        for end, pieces in result.pieces:
            for node, leaves in pieces:
                join_subtree(builder, node, leaves)
            if end not in roots:
                continue
            root = builder.root()
            for signed_root, where in roots[end].items():
                if signed_root != root:
                    explained = any(0 < f.seq <= end for f in report.findings)
                    if not explained:
                        report.findings.append(_mismatch(work, previous, end, where))
            previous = end


def _mismatch(work: Sequence[Segment], previous: int, end: int, where: str) -> Finding:
    """Return the finding for a root that differs from a signed one: the entry, when one can be named."""
    for segment in work:
        if segment.last > previous and segment.first <= end:
            finding = diagnose_segment(segment)
            if finding is not None and finding.seq <= end:
                return finding
    whose = "its own checkpoint" if where == "exported" else "a checkpoint kept elsewhere"
    return Finding(
        previous + 1,
        f"entries {previous + 1}..{end} do not hash to {whose} of size {end}: the log was rewritten "
        f"(the first bad entry is among them)",
    )
