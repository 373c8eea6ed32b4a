"""The audit log as evidence: signed checkpoints, their public keys, proofs, and a partner's own entries.

Checkpoints, keys and proofs hold only hashes and are public, so that anyone holding a checkpoint
(a partner's witness, an auditor) can check the log without an account. Entries are personal data:
only a partner's privacy officer reads them, only its own organisation's, and every read is itself
an audit entry (`audit.read`) committed before the entries are returned.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from gateway.api.deps import MAX_INDEX, ContainerDep
from gateway.api.guards import audit_unavailable, oversight_guard
from gateway.api.oversight_schemas import (
    CheckpointKeysOut,
    ConsistencyProofOut,
    InclusionProofOut,
    OwnEntriesOut,
)
from gateway.api.problems import Problem
from gateway.api.schemas import problems
from gateway.audit import repository
from gateway.audit.proofs import ProofUnavailable, TreeCache
from gateway.audit.writer import AuditUnavailable
from gateway.container import Container
from gateway.exchange.authorize import OversightGrant
from gateway.policies.model import OversightAction

router = APIRouter(prefix="/v1/audit", tags=["audit log"], responses=problems(404))

READ_EVENT = "audit.read"
CHECKPOINT_MEDIA_TYPE = "text/plain; charset=utf-8"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _proofs(container: Container) -> TreeCache:
    if container.proofs is None:
        container.proofs = TreeCache(container.db)
    return container.proofs


def _sealed_size(container: Container) -> int:
    latest = repository.latest_checkpoint(container.db)
    if latest is None:
        raise Problem(404, "no_checkpoint", "No checkpoint has been signed yet.")
    return latest.checkpoint.size


@router.get(
    "/checkpoint",
    summary="The latest signed checkpoint (C2SP tlog-checkpoint text, Ed25519 signed note)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def latest_checkpoint(container: ContainerDep) -> Response:
    latest = repository.latest_checkpoint(container.db)
    if latest is None:
        raise Problem(404, "no_checkpoint", "No checkpoint has been signed yet.")
    return Response(latest.text, media_type=CHECKPOINT_MEDIA_TYPE, headers={"Cache-Control": "no-store"})


@router.get(
    "/checkpoints/{size}",
    summary="The checkpoint signed at exactly this tree size",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def checkpoint_at(size: Annotated[int, Path(le=MAX_INDEX)], container: ContainerDep) -> Response:
    found = repository.checkpoint_at(container.db, size) if size >= 0 else None
    if found is None:
        raise Problem(404, "no_checkpoint", f"No checkpoint was signed at tree size {size}.")
    return Response(found.text, media_type=CHECKPOINT_MEDIA_TYPE)


@router.get(
    "/keys", response_model=CheckpointKeysOut, summary="The public keys that sign checkpoints (current and retired)"
)
def keys(container: ContainerDep) -> Response:
    origin = container.settings.audit_origin
    published = repository.verifier_keys(container.db, container.settings.key_dir, origin)
    return _json(
        {
            "origin": origin,
            "algorithm": "Ed25519",
            "keys": [
                {
                    "verifier_key": p.key.encode(),
                    "key_id": p.key.key_id.hex(),
                    "public_key": _b64(p.key.public_key),
                    "status": "current" if p.current else "retired",
                }
                for p in published
            ],
        }
    )


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProofOut,
    responses=problems(400, 409),
    summary="Inclusion proof of an entry in the tree of a signed checkpoint",
)
def inclusion_proof(
    container: ContainerDep,
    seq: Annotated[int, Query(ge=1, le=MAX_INDEX, description="The entry's sequence number (leaf index seq - 1)")],
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="Default: the latest checkpoint's size")
    ] = None,
) -> Response:
    sealed = _sealed_size(container)
    size = sealed if tree_size is None else tree_size
    if size > sealed:
        raise Problem(400, "beyond_checkpoint", f"The latest checkpoint covers {sealed} entries.")
    if seq > size:
        raise Problem(400, "not_in_tree", f"Entry {seq} is not in the tree of size {size}.")
    try:
        path = _proofs(container).inclusion_proof(seq - 1, size)
        leaf = _proofs(container).subtree_root(seq - 1, seq)
    except ProofUnavailable as exc:
        raise Problem(409, "log_incomplete", str(exc)) from None
    return _json(
        {
            "seq": seq,
            "leaf_index": seq - 1,
            "tree_size": size,
            "leaf_hash": _b64(leaf),
            "inclusion_path": [_b64(h) for h in path],
        }
    )


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProofOut,
    responses=problems(400, 409),
    summary="Consistency proof: the tree of `second` extends the tree of `first`",
)
def consistency_proof(
    container: ContainerDep,
    first: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    second: Annotated[
        int | None, Query(ge=0, le=MAX_INDEX, description="Default: the latest checkpoint's size")
    ] = None,
) -> Response:
    sealed = _sealed_size(container)
    size = sealed if second is None else second
    if size > sealed:
        raise Problem(400, "beyond_checkpoint", f"The latest checkpoint covers {sealed} entries.")
    if first > size:
        raise Problem(400, "bad_sizes", "first must not exceed second.")
    try:
        path = _proofs(container).consistency_proof(first, size)
    except ProofUnavailable as exc:
        raise Problem(409, "log_incomplete", str(exc)) from None
    return _json({"first": first, "second": size, "consistency_path": [_b64(h) for h in path]})


def _view(container: Container, organisation: str, text: str) -> dict[str, Any]:
    """Return an entry for its own organisation: internal participant ids become that organisation's pseudonyms."""
    entry: dict[str, Any] = orjson.loads(text)
    pseudonym = container.store.pseudonym
    if entry.get("participant"):
        entry["participant"] = pseudonym(organisation, entry["participant"])
    if isinstance(entry.get("participants"), list):
        entry["participants"] = [pseudonym(organisation, p) for p in entry["participants"]]
    return entry


AuditReviewGrant = Annotated[OversightGrant, Depends(oversight_guard(OversightAction.AUDIT_REVIEW, READ_EVENT))]


@router.get(
    "/entries",
    response_model=OwnEntriesOut,
    summary="Your organisation's own entries, in log order (privacy officers only)",
)
def own_entries(
    grant: AuditReviewGrant,
    container: ContainerDep,
    after: Annotated[int, Query(ge=0, le=MAX_INDEX, description="Return entries with a larger sequence number")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    organisation = grant.organisation
    authorizer = container.exchange.authorizer
    try:
        upto = repository.entry_count(container.db)
        rows = repository.entries_of_organisation(container.db, organisation, after, limit, upto)
        seq = authorizer.record(
            grant,
            READ_EVENT,
            "privacy_officer_review",
            view="partner_entries",
            after=after,
            limit=limit,
            results=len(rows),
            first_seq=rows[0].seq if rows else None,
            last_seq=rows[-1].seq if rows else None,
        )
    except AuditUnavailable:
        raise audit_unavailable() from None
    latest = repository.latest_checkpoint(container.db)
    return _json(
        {
            "organisation": organisation,
            "entries": [
                {"seq": r.seq, "leaf_hash": _b64(r.leaf_hash), "entry": _view(container, organisation, r.entry)}
                for r in rows
            ],
            "next_after": rows[-1].seq if len(rows) == limit else None,
            "checkpoint_size": latest.checkpoint.size if latest is not None else 0,
            "audit": {"seq": seq},
        }
    )
