"""The upload endpoint: a source organisation delivers a CSV for one category (same path as `gateway import csv`)."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.api.deps import ContainerDep, ContextDep, get_principal
from gateway.api.problems import Problem
from gateway.api.schemas import problems
from gateway.connectors.csv_import import CsvImport, FileRefused, ImportResult
from gateway.exchange.authorize import Denied

# Tagged with the exchange: the callers are the source organisations' own roles, like its writes.
router = APIRouter(prefix="/v1", tags=["exchange"], dependencies=[Depends(get_principal)])
CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "participant,notes,last_contact_date\npaaaaaaaaaaaaaaaaaaaaaaaaaa,synthetic,2024-11-01\n",
            }
        },
    }
}
MAX_LISTED = 1000  # rejected rows listed in the answer; the counts cover them all


class RejectedRowOut(BaseModel):
    row: int = Field(description="The row number in the file (the header is row 1)")
    participant: str | None
    reason: str


class ImportOut(BaseModel):
    """The outcome of one CSV delivery: counts, the rejected rows with their reasons, the audit entry."""

    status: str
    category: str
    content_sha256: str
    rows_total: int
    rows_imported: int
    rows_rejected: int
    rejections: dict[str, int] = Field(description="Rejected rows per reason")
    rejected_rows: list[RejectedRowOut]
    rejected_rows_truncated: bool = Field(description=f"True when more than {MAX_LISTED} rows were rejected")
    audit: dict[str, int] = Field(description="`seq`: the audit entry that records the import")
    import_id: str | None


def _rejections(report: Path) -> tuple[list[dict[str, Any]], bool]:
    listed: list[dict[str, Any]] = []
    with report.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows, None)
        for row in rows:
            if len(listed) == MAX_LISTED:
                return listed, True
            listed.append({"row": int(row[0]), "participant": row[1] or None, "reason": row[2]})
    return listed, False


def _body(result: ImportResult, category: str, report: Path) -> dict[str, Any]:
    rejected, truncated = _rejections(report)
    return {
        "status": result.status,
        "category": category,
        "content_sha256": result.content_sha256,
        "rows_total": result.rows_total,
        "rows_imported": result.rows_imported,
        "rows_rejected": result.rows_rejected,
        "rejections": dict(sorted(result.reasons.items())),
        "rejected_rows": rejected,
        "rejected_rows_truncated": truncated,
        "audit": {"seq": result.audit_seq},
        "import_id": result.import_id,
    }


@router.post(
    "/imports/{category}",
    summary="Import a CSV delivery into one category (the caller's organisation is the source)",
    responses={
        200: {"model": ImportOut, "description": "The same file was imported before; nothing was written again"},
        201: {"model": ImportOut, "description": "Imported"},
        **problems(400, 403, 413, 415, 422, 503),
    },
    status_code=201,
    openapi_extra=CSV_BODY,
)
async def upload_csv(
    request: Request,
    category: Annotated[str, PathParam(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")],
    ctx: ContextDep,
    container: ContainerDep,
    partial: Annotated[bool, Query(description="Import the valid rows even when others are rejected")] = False,
) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "text/csv":
        raise Problem(415, "unsupported_media_type", "Send the file as text/csv.")
    exchange = container.exchange
    try:
        await exchange.require_purpose(ctx, "import.csv")
    except Denied as exc:
        raise Problem(400, exc.reason, exc.text, audit_seq=exc.audit_seq) from None
    with tempfile.TemporaryDirectory(prefix="gateway-import-") as scratch:
        upload = Path(scratch) / "upload.csv"
        report = Path(scratch) / "rejected.csv"
        fd = os.open(upload, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():  # to disk as it arrives: memory stays bounded
                out.write(chunk)

        def run() -> ImportResult:
            with report.open("w", encoding="utf-8", newline="") as sink:
                name = f"upload-{ctx.trace.trace_id}.csv"
                importer = CsvImport(exchange.authorizer, exchange.store, ctx, category, upload, name, partial, sink)
                return importer.run()

        try:
            result = await run_in_threadpool(run)
        except FileRefused as exc:
            raise Problem(422, exc.code, "The file cannot be imported.", exc.text) from None
        body = _body(result, category, report)
    if result.status == "imported":
        return Response(orjson.dumps(body), 201, media_type="application/json")
    if result.status == "already_imported":
        return Response(orjson.dumps(body), 200, media_type="application/json")
    if result.file_problem is not None:
        problem = result.file_problem
        raise Problem(422, problem.code, "The file cannot be imported.", problem.text, audit_seq=result.audit_seq)
    only_denied = set(result.reasons) == {"not_permitted"}
    status, code = (403, "not_permitted") if only_denied else (422, "rows_rejected")
    title = "No rule permits this import." if only_denied else "Rows were rejected; nothing was imported."
    extra = {k: v for k, v in body.items() if k not in ("status", "audit")}
    raise Problem(status, code, title, audit_seq=result.audit_seq, **extra)
