"""CSV imports on SQLite and PostgreSQL: validation per row with a report, one audited activity, all or
nothing unless partial, idempotent re-runs, bounded memory, and the upload endpoint over real HTTP."""

from __future__ import annotations

import csv
import io
import tracemalloc
from pathlib import Path

import orjson
from sqlalchemy import func, select

from gateway.connectors.csv_import import CsvImport, ImportResult
from gateway.connectors.simulators import NgoCsvSim, ngo_notes_csv
from gateway.exchange.context import Principal, RequestContext, TraceContext
from gateway.store.tables import audit_entries, records
from tests.conftest import Gateway

NGO = "ngo-opvang-amsterdam"
PROBLEM = "application/problem+json"
ROWS = 120_000  # the huge file


def ngo_ctx(role: str = "counsellor", purpose: str = "shelter_counselling") -> RequestContext:
    return RequestContext(
        Principal(NGO, "ngo-client", "t", 0), "importer.1", role, purpose, TraceContext.from_header(None)
    )


def participants(gw: Gateway, n: int) -> list[str]:
    """Register n participants in Amsterdam; return the NGO's pseudonyms for them."""
    return [gw.pseudonym_for(NGO, gw.register()) for _ in range(n)]


def run_import(gw: Gateway, path: Path, partial: bool = False) -> tuple[ImportResult, list[list[str]]]:
    report = io.StringIO()
    c = gw.container
    result = CsvImport(
        c.exchange.authorizer, c.store, ngo_ctx(), "counselling_notes", path, None, partial, report
    ).run()
    return result, list(csv.reader(io.StringIO(report.getvalue())))[1:]


def notes_rows(gw: Gateway) -> int:
    with gw.container.db.read.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(records).where(records.c.category == "counselling_notes")
            ).scalar_one()
        )


def entry(gw: Gateway, seq: int) -> dict[str, object]:
    with gw.container.db.read.connect() as conn:
        return orjson.loads(conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one())


def read_notes(gw: Gateway, pseudonym: str) -> dict[str, object]:
    response = gw.http.get(
        f"/v1/participants/{pseudonym}", headers=gw.headers(NGO, "counsellor", "shelter_counselling")
    )
    assert response.status_code == 200, response.text
    return response.json()["records"]["counselling_notes"]  # type: ignore[no-any-return]


def test_a_valid_file_is_imported_as_one_audited_activity(gateway: Gateway, tmp_path: Path) -> None:
    refs = participants(gateway, 3)
    path = tmp_path / "notes.csv"
    path.write_bytes(ngo_notes_csv([(r, f"synthetic note {i}", f"2024-11-0{i}") for i, r in enumerate(refs, 1)]))
    result, rejected = run_import(gateway, path)
    assert (result.status, result.rows_total, result.rows_imported, rejected) == ("imported", 3, 3, [])
    logged = entry(gateway, result.audit_seq or 0)
    assert logged["event"] == "import.csv"
    assert logged["decision"] == "permit"
    assert (logged["rows_total"], logged["rows_accepted"], logged["rows_rejected"]) == (3, 3, 0)
    assert logged["content_sha256"] == result.content_sha256
    assert logged["rule_ids"] == ["shelter-ngo-write"]
    assert "synthetic note" not in str(logged)  # the log never holds record contents
    with gateway.container.db.read.connect() as conn:
        seqs = set(conn.execute(select(records.c.audit_seq).where(records.c.category == "counselling_notes")).scalars())
    assert seqs == {result.audit_seq}
    assert read_notes(gateway, refs[1])["fields"] == {"notes": "synthetic note 2", "last_contact_date": "2024-11-02"}


def test_malformed_rows_refuse_the_whole_file_and_are_reported_with_row_and_reason(
    gateway: Gateway, tmp_path: Path
) -> None:
    good, other = participants(gateway, 2)
    path = tmp_path / "notes.csv"
    path.write_text(
        "participant,notes,last_contact_date\n"
        f"{good},fine,2024-11-01\n"
        f"{other},too,many,columns\n"
        "not-a-pseudonym,x,2024-11-01\n"
        f"p{'a' * 26},unknown person,2024-11-01\n"
        f"{good},,\n"
        f'{good},"bell \x07 character",2024-11-01\n',
        encoding="utf-8",
    )
    result, rejected = run_import(gateway, path)
    assert result.status == "refused"
    assert notes_rows(gateway) == 0
    reasons = {int(row[0]): row[2].split(":")[0] for row in rejected}
    assert reasons == {
        3: "column_count",
        4: "bad_participant",
        5: "unknown_participant",
        6: "no_values",
        7: "control_characters",
    }
    logged = entry(gateway, result.audit_seq or 0)
    assert (logged["decision"], logged["reason"], logged["rows_rejected"]) == ("deny", "rows_rejected", 5)


def test_partial_imports_the_valid_rows_and_reports_the_others(gateway: Gateway, tmp_path: Path) -> None:
    good, also = participants(gateway, 2)
    path = tmp_path / "notes.csv"
    path.write_text(f"participant,notes\n{good},fine\n{also},\n{also},second try\n{good},duplicate\n", encoding="utf-8")
    result, rejected = run_import(gateway, path, partial=True)
    assert (result.status, result.rows_imported, result.rows_rejected) == ("imported", 2, 2)
    assert [(r[0], r[2].split(":")[0]) for r in rejected] == [("3", "no_values"), ("5", "duplicate_participant")]
    assert "row 2" in rejected[1][2]
    assert read_notes(gateway, also)["fields"] == {"notes": "second try"}


def test_wrong_encodings_are_rejected_row_by_row_or_as_a_file(gateway: Gateway, tmp_path: Path) -> None:
    good, latin = participants(gateway, 2)
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"participant,notes\n{good},café ok\n".encode() + f"{latin},caf\xe9 latin-1\n".encode("latin-1"))
    result, rejected = run_import(gateway, path)
    assert result.status == "refused"
    assert [(r[0], r[2].split(":")[0]) for r in rejected] == [("3", "encoding")]
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text(f"participant,notes\n{good},x\n", encoding="utf-16")
    result, rejected = run_import(gateway, utf16)
    assert result.file_problem is not None
    assert result.file_problem.code == "encoding"
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + f"participant,notes\n{good},met BOM\n".encode())
    result, rejected = run_import(gateway, bom)
    assert (result.status, rejected) == ("imported", [])


def test_a_header_with_a_field_the_category_lacks_refuses_the_file(gateway: Gateway, tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("participant,notes,diagnosis\n", encoding="utf-8")
    result, _ = run_import(gateway, path)
    assert result.file_problem is not None
    assert result.file_problem.code == "unknown_field"
    assert entry(gateway, result.audit_seq or 0)["reason"] == "unknown_field"


def test_the_same_file_again_writes_nothing(gateway: Gateway, tmp_path: Path) -> None:
    refs = participants(gateway, 2)
    path = tmp_path / "notes.csv"
    path.write_bytes(ngo_notes_csv([(r, "once", "2024-11-01") for r in refs]))
    first, _ = run_import(gateway, path)
    again, _ = run_import(gateway, path)
    assert first.status == "imported"
    assert again.status == "already_imported"
    assert (again.audit_seq, again.import_id, again.rows_imported) == (first.audit_seq, first.import_id, 2)
    assert notes_rows(gateway) == 2
    assert read_notes(gateway, refs[0])["version"] == 1


def test_a_huge_file_is_streamed_in_bounded_memory(gateway: Gateway, tmp_path: Path) -> None:
    refs = participants(gateway, 3)
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("participant,notes,last_contact_date\n")
        for i in range(ROWS):
            out.write(f"p{'b' * 20}{i:06d},synthetic note number {i} with some padding text,2024-11-01\n")
        for r in refs:
            out.write(f"{r},known,2024-11-01\n")
    size = path.stat().st_size
    c = gateway.container
    with (tmp_path / "rejected.csv").open("w", encoding="utf-8", newline="") as report:
        importer = CsvImport(c.exchange.authorizer, c.store, ngo_ctx(), "counselling_notes", path, None, True, report)
        tracemalloc.start()
        try:
            result = importer.run()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert (result.rows_total, result.rows_imported, result.rows_rejected) == (ROWS + 3, 3, ROWS)
    assert (tmp_path / "rejected.csv").read_text(encoding="utf-8").count("\n") == ROWS + 1
    assert size > 8_000_000
    assert peak < 3_000_000, f"peak {peak} bytes for a {size}-byte file"


def test_the_upload_endpoint_imports_for_the_source_organisation(gateway: Gateway) -> None:
    refs = participants(gateway, 2)
    with NgoCsvSim(ngo_notes_csv([(r, "delivered", "2024-11-03") for r in refs])) as ngo:
        import httpx

        export = httpx.get(f"{ngo.url}/exports/counselling_notes.csv", timeout=10).content
    headers = {**gateway.headers(NGO, "counsellor", "shelter_counselling"), "Content-Type": "text/csv"}
    created = gateway.http.post("/v1/imports/counselling_notes", content=export, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["rows_imported"] == 2
    again = gateway.http.post("/v1/imports/counselling_notes", content=export, headers=headers)
    assert again.status_code == 200
    assert again.json()["status"] == "already_imported"
    assert read_notes(gateway, refs[0])["fields"]["notes"] == "delivered"


def test_the_upload_endpoint_answers_problems(gateway: Gateway) -> None:
    ref = participants(gateway, 1)[0]
    body = f"participant,notes\n{ref},fine\nbad,row\n".encode()
    headers = {**gateway.headers(NGO, "counsellor", "shelter_counselling"), "Content-Type": "text/csv"}
    rejected = gateway.http.post("/v1/imports/counselling_notes", content=body, headers=headers)
    assert rejected.status_code == 422
    assert rejected.headers["content-type"] == PROBLEM
    assert rejected.json()["code"] == "rows_rejected"
    assert rejected.json()["rejected_rows"] == [
        {"row": 3, "participant": None, "reason": rejected.json()["rejected_rows"][0]["reason"]}
    ]
    city = gateway.pseudonym_for("amsterdam", ref) if False else None  # noqa: F841 (the city knows it by another name)
    wrong_role = {**gateway.headers("amsterdam", "case_manager", "shelter_counselling"), "Content-Type": "text/csv"}
    city_ref = gateway.container.store.pseudonym("amsterdam", gateway.container.store.resolve(NGO, ref).id)  # type: ignore[union-attr]
    denied = gateway.http.post(
        "/v1/imports/counselling_notes", content=f"participant,notes\n{city_ref},x\n".encode(), headers=wrong_role
    )
    assert denied.status_code == 403
    assert denied.json()["code"] == "not_permitted"
    assert (
        gateway.http.post(
            "/v1/imports/counselling_notes", content=body, headers={**headers, "Content-Type": "application/json"}
        ).status_code
        == 415
    )
    no_purpose = {k: v for k, v in headers.items() if k != "Processing-Purpose"}
    assert gateway.http.post("/v1/imports/counselling_notes", content=body, headers=no_purpose).status_code == 400
    assert notes_rows(gateway) == 0
