"""File imports: a partner without an API delivers a CSV, imported on the same decision-and-audit path.

The file is read twice, as a stream (memory stays bounded whatever its size):

1. validate every row against the category's fields and the source organisation's participants;
   rejected rows go to the report (row number and reason), never silently dropped. The rows'
   regions are decided by the policy (the source must be permitted to write the category there).
2. log one audit entry for the whole import (file hash, counts, regions, rules), durably; then
   write the accepted rows, together with the import's own row, in one transaction.

All or nothing per file unless `partial`: one rejected row refuses the whole file (the refusal is
logged too). The same file (content hash) imported again by the same source into the same category
writes nothing and answers with the earlier import. Rows: the header names `participant` (the
source organisation's own pseudonym for the participant) and fields of the category; an empty cell
leaves the field as it is. Row numbers count the header as row 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from gateway.exchange.authorize import AuthorizedAccess, Authorizer, Denied, ImportGrant
from gateway.exchange.context import RequestContext
from gateway.policies.decision import AccessRequest, Decision
from gateway.policies.model import Operation
from gateway.store.records import ParticipantRef, RecordStore

PSEUDONYM = re.compile(r"^p[a-z2-7]{26}$")
MAX_VALUE_CHARS = 4000
BATCH = 500  # rows resolved per query
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
EVENT = "import.csv"
csv.field_size_limit(MAX_VALUE_CHARS * 4)  # a longer cell is a malformed row, not a memory problem


class FileRefused(Exception):
    """The file as a whole cannot be imported (header, encoding); `code` is stable."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass
class ImportResult:
    status: str  # imported | refused | already_imported
    content_sha256: str
    rows_total: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    audit_seq: int | None = None
    import_id: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)  # rejection reason code -> rows
    file_problem: FileRefused | None = None  # the file as a whole was refused (header, encoding)


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    ref: str
    values: dict[str, Any]


Progress = Callable[[int, int], None]  # (bytes read, total bytes)


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Lines:
    """Decoded lines of a binary stream; remembers the physical lines that are not UTF-8."""

    def __init__(self, raw: BinaryIO, progress: Progress | None, total: int) -> None:
        self._raw = raw
        self.bad: set[int] = set()
        self.line = 0
        self._progress = progress
        self._total = total
        self._read = 0

    def __iter__(self) -> Iterator[str]:
        for chunk in self._raw:
            self.line += 1
            self._read += len(chunk)
            if self._progress is not None and self.line % 5000 == 0:
                self._progress(self._read, self._total)
            if self.line == 1 and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
            try:
                yield chunk.decode("utf-8")
            except UnicodeDecodeError:
                self.bad.add(self.line)
                yield chunk.decode("utf-8", errors="replace")
        if self._progress is not None:
            self._progress(self._read, self._total)


class CsvImport:
    """One CSV file into one category, delivered by one source organisation."""

    def __init__(
        self,
        authorizer: Authorizer,
        store: RecordStore,
        ctx: RequestContext,
        category: str,
        path: Path,
        file_name: str | None = None,
        partial: bool = False,
        report: TextIO | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.authorizer = authorizer
        self.store = store
        self.ctx = ctx
        self.org = ctx.principal.organisation
        self.category = category
        self.path = path
        self.file_name = (file_name or path.name)[:255]
        self.partial = partial
        self.report = csv.writer(report, lineterminator="\n") if report is not None else None
        self.progress = progress
        policy = authorizer.current_policy()
        cat = policy.categories.get(category)
        if cat is None:
            raise FileRefused("unknown_category", f"'{category}' is not a data category.")
        self.fields = [f.name for f in cat.fields]

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> ImportResult:
        """Validate, decide and log, then write (or refuse); return what happened."""
        sha = file_sha256(self.path)
        earlier = self.store.find_import(self.org, self.category, sha)
        if earlier is not None:
            return ImportResult(
                "already_imported",
                sha,
                earlier.rows_total,
                earlier.rows_imported,
                earlier.rows_rejected,
                earlier.audit_seq,
                earlier.id,
            )
        if self.report is not None:
            self.report.writerow(["row", "participant", "reason"])
        result = ImportResult("refused", sha)
        header: list[str] = []
        try:
            header, decisions = self._validate(result)
        except FileRefused as exc:
            self._reject(result, 1, "", exc.code, exc.text)
            result.file_problem = exc
            decisions = {}
            refusal: str | None = exc.code
        else:
            refusal = "rows_rejected" if result.rows_rejected and not self.partial else None
        counts = {
            "file_name": self.file_name,
            "content_sha256": sha,
            "category": self.category,
            "categories": [self.category],
            "fields": {self.category: header[1:]},
            "rows_total": result.rows_total,
            "rows_accepted": result.rows_total - result.rows_rejected,
            "rows_rejected": result.rows_rejected,
            "rejections": dict(sorted(result.reasons.items())),
            "partial": self.partial,
        }
        if refusal is None and result.rows_total == result.rows_rejected:
            refusal = "no_rows"
        try:
            grant = self.authorizer.authorize_import(self.ctx, EVENT, decisions, refusal, **counts)
        except Denied as exc:
            result.audit_seq = exc.audit_seq
            return result
        result.audit_seq = grant.audit_seq
        result.import_id = str(uuid.uuid4())
        record = {
            "id": result.import_id,
            "source_organisation": self.org,
            "category": self.category,
            "content_sha256": sha,
            "file_name": self.file_name,
            "rows_total": result.rows_total,
            "rows_rejected": result.rows_rejected,
            "audit_seq": grant.audit_seq,
        }
        now = self.authorizer.clock.now()
        result.rows_imported = self.store.write_import(self.category, self._accepted(grant), now, record)
        result.status = "imported"
        return result

    # -- pass 1: validate -----------------------------------------------------------------------

    def _reject(self, result: ImportResult, number: int, ref: str, code: str, text: str) -> None:
        result.rows_rejected += 1 if number > 1 else 0
        result.reasons[code] = result.reasons.get(code, 0) + 1
        if self.report is not None:
            self.report.writerow([number, ref[:40], f"{code}: {text}"])

    def _validate(self, result: ImportResult) -> tuple[list[str], dict[str, Decision]]:
        """Read the file once: reject what is wrong, decide the regions of what is right."""
        seen: dict[str, int] = {}  # participant id -> first row: bounded by the registry, not the file
        decisions: dict[str, Decision] = {}
        header: list[str] = []

        def settle(batch: list[_Row]) -> None:
            refs = self.store.resolve_many(self.org, [r.ref for r in batch])
            for row in batch:
                ref = refs.get(row.ref)
                if ref is None:
                    text = f"{self.org} knows no such participant"
                    self._reject(result, row.number, row.ref, "unknown_participant", text)
                    continue
                first = seen.setdefault(ref.id, row.number)
                if first != row.number:
                    text = f"the participant is on row {first} too"
                    self._reject(result, row.number, row.ref, "duplicate_participant", text)
                    continue
                decision = decisions.get(ref.region) or self._decide(ref.region, header[1:])
                decisions[ref.region] = decision
                if not decision.permitted:
                    self._reject(result, row.number, row.ref, "not_permitted", decision.reason_text)

        for batch in self._rows(result, header.extend):
            settle(batch)
        return header, {region: d for region, d in decisions.items() if d.permitted}

    def _decide(self, region: str, fields: list[str]) -> Decision:
        request = AccessRequest(
            self.org,
            self.ctx.role,
            self.ctx.purpose or "",
            Operation.WRITE,
            region,
            (self.category,),
            tuple((self.category, f) for f in fields),
        )
        return self.authorizer.decide_regions({region: request})[region]

    def _rows(self, result: ImportResult, on_header: Callable[[list[str]], None]) -> Iterator[list[_Row]]:
        """Yield batches of rows that pass the checks of a row on its own (rejecting the others)."""
        total = self.path.stat().st_size
        with self.path.open("rb") as raw:
            head = raw.read(4)
            if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise FileRefused("encoding", "the file is UTF-16; deliver it as UTF-8")
            raw.seek(0)
            lines = _Lines(raw, self.progress, total)
            reader = csv.reader(lines, strict=True)
            previous_line = 0
            try:
                header = next(reader)
            except StopIteration:
                raise FileRefused("empty_file", "the file holds no header") from None
            except csv.Error as exc:
                raise FileRefused("malformed_header", f"the header is not CSV: {exc}") from None
            if lines.bad:
                raise FileRefused("encoding", "the header is not UTF-8 text")
            self._check_header(header)
            on_header(header)
            previous_line = lines.line
            batch: list[_Row] = []
            number = 1
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    number += 1
                    result.rows_total += 1
                    self._reject(result, number, "", "malformed_row", str(exc))
                    previous_line = lines.line
                    continue
                number += 1
                spans = range(previous_line + 1, lines.line + 1)
                previous_line = lines.line
                if not cells:
                    number -= 1  # a blank line is no row
                    continue
                result.rows_total += 1
                problem = self._check_row(cells, header, any(n in lines.bad for n in spans))
                ref = cells[0] if cells else ""
                if problem is not None:
                    self._reject(result, number, ref if PSEUDONYM.match(ref) else "", *problem)
                    continue
                values = {name: cell for name, cell in zip(header[1:], cells[1:], strict=True) if cell != ""}
                batch.append(_Row(number, ref, values))
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch

    def _check_header(self, header: list[str]) -> None:
        if not header or header[0].strip() != "participant":
            raise FileRefused("bad_header", "the first column must be 'participant'")
        names = [h.strip() for h in header[1:]]
        unknown = [n for n in names if n not in self.fields]
        if unknown:
            raise FileRefused("unknown_field", f"category '{self.category}' has no field(s) {', '.join(unknown)}")
        if len(set(names)) != len(names) or not names:
            raise FileRefused("bad_header", "the header names each field once, and at least one")
        header[:] = ["participant", *names]

    @staticmethod
    def _check_row(cells: list[str], header: list[str], bad_encoding: bool) -> tuple[str, str] | None:
        if bad_encoding:
            return "encoding", "the row is not valid UTF-8 text"
        if len(cells) != len(header):
            return "column_count", f"expected {len(header)} columns, found {len(cells)}"
        if not PSEUDONYM.match(cells[0]):
            return "bad_participant", "the participant column holds no pseudonym"
        if all(cell == "" for cell in cells[1:]):
            return "no_values", "the row holds no value"
        for name, cell in zip(header[1:], cells[1:], strict=True):
            if len(cell) > MAX_VALUE_CHARS:
                return "value_too_long", f"{name} is longer than {MAX_VALUE_CHARS} characters"
            if _CONTROL.search(cell):
                return "control_characters", f"{name} holds control characters"
        return None

    # -- pass 2: write --------------------------------------------------------------------------

    def _accepted(self, grant: ImportGrant) -> Iterator[tuple[AuthorizedAccess, dict[str, Any]]]:
        """Yield (access, values) for every accepted row, reading the file again (same checks)."""
        scratch = ImportResult("", "")
        report, self.report, progress, self.progress = self.report, None, self.progress, None
        seen: set[str] = set()
        try:
            for batch in self._rows(scratch, lambda h: None):
                refs: dict[str, ParticipantRef] = self.store.resolve_many(self.org, [r.ref for r in batch])
                for row in batch:
                    ref = refs.get(row.ref)
                    if ref is None or ref.id in seen or ref.region not in grant.decisions:
                        continue
                    seen.add(ref.id)
                    yield grant.access_for(ref.id, ref.region), row.values
        finally:
            self.report, self.progress = report, progress
