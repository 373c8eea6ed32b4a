"""Export and offline verification: every kind of tampering is caught and the first bad entry is named."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from gateway.audit.checkpoint import Checkpoint, VerifierKey, parse, parse_verifier_keys, sign
from gateway.audit.export import ExportError, export_log
from gateway.audit.signing_keys import load_checkpoint_key
from gateway.audit.verify import VerifyReport, verify_export
from gateway.store.db import Database, connect
from gateway.store.migrate import upgrade
from tests.support.audit_log import ORIGIN, build_log, rewrite_history

SIZES = [1, 50, 130, 200, 300]
SEGMENT = 64


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Database]]:
    """A 300-entry log with five checkpoints on SQLite, exported once in segments of 64 entries."""
    base = tmp_path_factory.mktemp("audit-export")
    db = connect(f"sqlite:///{base}/gateway.db")
    upgrade(db)
    build_log(db, base / "keys", SIZES)
    export_log(db, base / "export", base / "keys", ORIGIN, SEGMENT)
    yield base / "export", base / "keys", db
    db.dispose()


@pytest.fixture
def export(pristine: tuple[Path, Path, Database], tmp_path: Path) -> Path:
    """A fresh copy of the export to tamper with."""
    return Path(shutil.copytree(pristine[0], tmp_path / "export"))


@pytest.fixture
def keys(pristine: tuple[Path, Path, Database]) -> list[VerifierKey]:
    return parse_verifier_keys((pristine[0] / "keys.txt").read_text().splitlines())


def segment_of(export: Path, seq: int) -> Path:
    first = (seq - 1) // SEGMENT * SEGMENT + 1
    return next((export / "segments").glob(f"{first:012d}-*.jsonl"))


def edit_lines(path: Path, change: object) -> None:
    lines = path.read_bytes().split(b"\n")[:-1]
    lines = change(lines)  # type: ignore[operator]
    path.write_bytes(b"\n".join(lines) + b"\n")


def index_in_segment(seq: int) -> int:
    return (seq - 1) % SEGMENT


def assert_fails_at(report: VerifyReport, seq: int, *words: str) -> None:
    assert not report.ok
    first = report.first
    assert first is not None
    assert first.seq == seq, first
    for word in words:
        assert word in first.text, first.text


def test_an_untouched_export_verifies_with_every_checkpoint(export: Path, keys: list[VerifierKey]) -> None:
    report = verify_export(export, keys, jobs=2)
    assert report.ok, report.findings
    assert report.entries == 300
    assert report.checkpoints == len(SIZES)
    assert sorted(p.name for p in (export / "segments").glob("*.jsonl"))[0] == "000000000001-000000000064.jsonl"


def test_verification_gives_the_same_answer_in_one_process_and_in_several(
    export: Path, keys: list[VerifierKey]
) -> None:
    assert verify_export(export, keys, jobs=1).ok
    assert verify_export(export, keys, jobs=3).ok


def test_an_edited_field_is_named_as_the_first_bad_entry(export: Path, keys: list[VerifierKey]) -> None:
    def edit(lines: list[bytes]) -> list[bytes]:
        i = index_in_segment(77)
        entry = orjson.loads(lines[i])
        entry["purpose"] = "police_screening"
        lines[i] = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
        return lines

    edit_lines(segment_of(export, 77), edit)
    assert_fails_at(verify_export(export, keys), 77, "edited")


def test_an_edited_field_with_its_recorded_leaf_rewritten_too_is_caught_by_the_signed_root(
    export: Path, keys: list[VerifierKey]
) -> None:
    from gateway.audit.fasthash import leaf_hashes_of_lines

    path = segment_of(export, 150)

    def edit(lines: list[bytes]) -> list[bytes]:
        i = index_in_segment(150)
        lines[i] = lines[i].replace(b"lso_case_discussion", b"intake")
        return lines

    edit_lines(path, edit)
    path.with_suffix(".leaves").write_bytes(b"".join(leaf_hashes_of_lines(path.read_bytes())))
    report = verify_export(export, keys)
    assert_fails_at(report, 131, "131..200", "rewritten")


def test_a_deleted_entry_is_named(export: Path, keys: list[VerifierKey]) -> None:
    edit_lines(
        segment_of(export, 100), lambda lines: lines[: index_in_segment(100)] + lines[index_in_segment(100) + 1 :]
    )
    assert_fails_at(verify_export(export, keys), 100, "entry 100", "deleted, inserted or moved")


def test_an_inserted_entry_is_named_where_it_was_inserted(export: Path, keys: list[VerifierKey]) -> None:
    def insert(lines: list[bytes]) -> list[bytes]:
        i = index_in_segment(11)  # between entries 10 and 11, numbered as the 11th
        forged = orjson.loads(lines[i])
        forged["organisation"] = "avim"
        return [*lines[:i], orjson.dumps(forged, option=orjson.OPT_SORT_KEYS), *lines[i:]]

    edit_lines(segment_of(export, 10), insert)
    assert_fails_at(verify_export(export, keys), 11, "entry 11")


def test_a_replayed_copy_of_an_entry_is_named_where_it_was_inserted(export: Path, keys: list[VerifierKey]) -> None:
    def replay(lines: list[bytes]) -> list[bytes]:
        i = index_in_segment(40)
        return [*lines[:i], lines[i - 1], *lines[i:]]

    edit_lines(segment_of(export, 40), replay)
    assert_fails_at(verify_export(export, keys), 40, "entry 40", "its place holds entry 39")


def test_two_swapped_entries_are_named_at_the_first_of_them(export: Path, keys: list[VerifierKey]) -> None:
    def swap(lines: list[bytes]) -> list[bytes]:
        i = index_in_segment(200)
        lines[i - 1], lines[i] = lines[i], lines[i - 1]
        return lines

    edit_lines(segment_of(export, 200), swap)
    assert_fails_at(verify_export(export, keys), 199, "entry 199", "its place holds entry 200")


def test_a_truncated_tail_is_named_at_the_first_missing_entry(export: Path, keys: list[VerifierKey]) -> None:
    edit_lines(segment_of(export, 300), lambda lines: lines[:-5])
    assert_fails_at(verify_export(export, keys), 296, "entry 296 is missing")


def test_a_tail_cut_off_with_its_checkpoints_is_caught_by_a_checkpoint_kept_elsewhere(
    export: Path, keys: list[VerifierKey], tmp_path: Path
) -> None:
    kept = tmp_path / "witness-300.txt"
    shutil.copy(export / "checkpoints" / f"{300:012d}.txt", kept)
    # Cut the log back to 200 entries and drop every checkpoint above: the export is consistent in itself.
    for path in (export / "segments").glob("*"):
        if int(path.name.split("-")[0]) > 200:
            path.unlink()
    last = next((export / "segments").glob("000000000193-*.jsonl"))
    edit_lines(last, lambda lines: lines[: 200 - 192])
    (last.with_suffix(".leaves")).write_bytes(last.with_suffix(".leaves").read_bytes()[: 8 * 32])
    last.rename(last.with_name("000000000193-000000000200.jsonl"))
    last.with_suffix(".leaves").rename(last.with_name("000000000193-000000000200.leaves"))
    (export / "checkpoints" / f"{300:012d}.txt").unlink()
    assert verify_export(export, keys).ok
    assert_fails_at(verify_export(export, keys, [kept]), 201, "truncated")


def test_a_rewritten_and_re_signed_log_is_caught_by_a_witnesss_older_checkpoint(tmp_path: Path) -> None:
    db = connect(f"sqlite:///{tmp_path}/gateway.db")
    upgrade(db)
    build_log(db, tmp_path / "keys", [40, 90])
    export_log(db, tmp_path / "before", tmp_path / "keys", ORIGIN, 32)
    witnessed = tmp_path / "before" / "checkpoints" / f"{40:012d}.txt"
    rewrite_history(db, tmp_path / "keys", 25, "decision", "permit")
    export_log(db, tmp_path / "after", tmp_path / "keys", ORIGIN, 32)
    db.dispose()
    keys = parse_verifier_keys((tmp_path / "after" / "keys.txt").read_text().splitlines())
    assert verify_export(tmp_path / "after", keys).ok  # re-signed with the real key: consistent in itself
    report = verify_export(tmp_path / "after", keys, [witnessed])
    assert not report.ok
    first = report.first
    assert first is not None
    assert "split view" in first.text or "kept elsewhere" in first.text


def test_two_different_signed_checkpoints_of_the_same_size_are_a_split_view(
    export: Path, keys: list[VerifierKey], pristine: tuple[Path, Path, Database], tmp_path: Path
) -> None:
    key = load_checkpoint_key(pristine[1])
    assert key is not None
    honest = parse((export / "checkpoints" / f"{200:012d}.txt").read_text()).checkpoint
    other = sign(Checkpoint(ORIGIN, 200, bytes(32), honest.time), key)
    fork = tmp_path / "other-200.txt"
    fork.write_text(other.text)
    report = verify_export(export, keys, [fork])
    assert not report.ok
    first = report.first
    assert first is not None
    assert "split view" in first.text
    assert "size 200" in first.text


def test_a_checkpoint_whose_signature_does_not_verify_is_refused(export: Path, keys: list[VerifierKey]) -> None:
    path = export / "checkpoints" / f"{130:012d}.txt"
    path.write_text(path.read_text().replace("\n130\n", "\n131\n"))
    report = verify_export(export, keys)
    assert not report.ok
    assert any("does not verify" in f.text for f in report.findings)


def test_an_export_signed_by_a_key_the_verifier_does_not_trust_is_refused(export: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.audit.checkpoint import raw_public_key

    stranger = VerifierKey(ORIGIN, raw_public_key(Ed25519PrivateKey.generate().public_key()))
    report = verify_export(export, [stranger])
    assert not report.ok
    assert any("no signature by a known key" in f.text for f in report.findings)


def test_a_missing_segment_is_named(export: Path, keys: list[VerifierKey]) -> None:
    segment_of(export, 70).unlink()
    assert_fails_at(verify_export(export, keys), 65, "65..128 are missing")


def test_nothing_is_exported_before_the_first_checkpoint_or_into_a_non_empty_directory(tmp_path: Path) -> None:
    db = connect(f"sqlite:///{tmp_path}/gateway.db")
    upgrade(db)
    with pytest.raises(ExportError, match="no checkpoint"):
        export_log(db, tmp_path / "out", None, ORIGIN)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export_log(db, tmp_path / "full", None, ORIGIN)
    db.dispose()


def test_an_export_from_either_database_verifies(database_url: str, tmp_path: Path) -> None:
    db = connect(database_url)
    build_log(db, tmp_path / "keys", [3, 70])
    summary = export_log(db, tmp_path / "out", tmp_path / "keys", ORIGIN, 16)
    db.dispose()
    assert (summary.entries, summary.segments, summary.checkpoints) == (70, 5, 2)
    assert verify_export(tmp_path / "out").ok
