"""The audit-log API over real HTTP: checkpoints, keys, proofs that verify, and a partner's own entries."""

from __future__ import annotations

import base64

import orjson
from sqlalchemy import select

from gateway.audit.checkpoint import VerifierKey, parse
from gateway.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from gateway.store.tables import audit_entries
from tests.conftest import Gateway


def sealed(gw: Gateway) -> int:
    assert gw.container.sealer is not None
    gw.container.sealer.seal()
    response = gw.http.get("/v1/audit/checkpoint")
    assert response.status_code == 200
    return parse(response.text).checkpoint.size


def trusted_keys(gw: Gateway) -> list[VerifierKey]:
    body = gw.http.get("/v1/audit/keys").json()
    return [VerifierKey.decode(k["verifier_key"]) for k in body["keys"]]


def stored(gw: Gateway) -> list[tuple[int, str, str | None]]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.seq, audit_entries.c.entry, audit_entries.c.organisation).order_by("seq")
        ).all()
    return [(r.seq, r.entry, r.organisation) for r in rows]


def officer(gw: Gateway, org: str, role: str = "privacy_officer") -> dict[str, str]:
    return gw.headers(org, role, None, user="po.001")


def test_the_latest_checkpoint_is_signed_text_that_verifies_with_the_published_keys(gateway: Gateway) -> None:
    gateway.register()
    size = sealed(gateway)
    response = gateway.http.get("/v1/audit/checkpoint")
    assert response.headers["content-type"].startswith("text/plain")
    signed = parse(response.text)
    key = signed.verify(trusted_keys(gateway))
    assert key.name == gateway.container.settings.audit_origin
    assert size == len(stored(gateway))
    assert gateway.http.get(f"/v1/audit/checkpoints/{size}").text == response.text


def test_the_keys_endpoint_names_the_current_key_and_keeps_retired_ones(gateway: Gateway) -> None:
    body = gateway.http.get("/v1/audit/keys").json()
    assert body["algorithm"] == "Ed25519"
    assert [k["status"] for k in body["keys"]] == ["current"]
    assert body["keys"][0]["verifier_key"].startswith(body["origin"] + "+")


def test_every_entry_has_an_inclusion_proof_that_verifies_against_the_signed_root(gateway: Gateway) -> None:
    for _ in range(3):
        gateway.register()
    size = sealed(gateway)
    cp = parse(gateway.http.get("/v1/audit/checkpoint").text).checkpoint
    for seq, entry, _ in stored(gateway):
        body = gateway.http.get("/v1/audit/proofs/inclusion", params={"seq": seq}).json()
        path = [base64.b64decode(h) for h in body["inclusion_path"]]
        assert body["tree_size"] == size
        assert verify_inclusion(leaf_hash(entry.encode()), seq - 1, size, path, cp.root)


def test_an_inclusion_proof_against_an_older_checkpoint_verifies_against_that_checkpoint(gateway: Gateway) -> None:
    gateway.register()
    old_size = sealed(gateway)
    old = parse(gateway.http.get(f"/v1/audit/checkpoints/{old_size}").text).checkpoint
    gateway.register()
    sealed(gateway)
    seq, entry, _ = stored(gateway)[0]
    body = gateway.http.get("/v1/audit/proofs/inclusion", params={"seq": seq, "tree_size": old_size}).json()
    path = [base64.b64decode(h) for h in body["inclusion_path"]]
    assert verify_inclusion(leaf_hash(entry.encode()), seq - 1, old_size, path, old.root)


def test_a_consistency_proof_shows_the_later_checkpoint_extends_the_earlier(gateway: Gateway) -> None:
    gateway.register()
    first = sealed(gateway)
    old = parse(gateway.http.get(f"/v1/audit/checkpoints/{first}").text).checkpoint
    gateway.register()
    gateway.register()
    second = sealed(gateway)
    new = parse(gateway.http.get("/v1/audit/checkpoint").text).checkpoint
    body = gateway.http.get("/v1/audit/proofs/consistency", params={"first": first, "second": second}).json()
    proof = [base64.b64decode(h) for h in body["consistency_path"]]
    assert verify_consistency(first, second, old.root, new.root, proof)
    assert not verify_consistency(first, second, old.root, new.root, proof[:-1])


def test_proofs_beyond_the_latest_checkpoint_are_refused(gateway: Gateway) -> None:
    gateway.register()
    size = sealed(gateway)
    gateway.register()  # not sealed yet
    too_far = gateway.http.get("/v1/audit/proofs/inclusion", params={"seq": size + 1})
    assert too_far.status_code == 400
    assert too_far.json()["code"] == "not_in_tree"
    beyond = gateway.http.get("/v1/audit/proofs/consistency", params={"first": 1, "second": size + 5})
    assert beyond.status_code == 400
    assert beyond.json()["code"] == "beyond_checkpoint"


def test_a_partner_officer_reads_only_its_own_organisations_entries_under_its_own_pseudonyms(
    gateway: Gateway,
) -> None:
    p = gateway.register("amsterdam")
    gateway.register("rotterdam")
    gateway.http.get(
        f"/v1/participants/{p}", headers=gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    )
    sealed(gateway)
    response = gateway.http.get("/v1/audit/entries", headers=officer(gateway, "amsterdam"))
    assert response.status_code == 200, response.text
    body = response.json()
    entries = [e["entry"] for e in body["entries"]]
    assert entries
    assert {e["organisation"] for e in entries} == {"amsterdam"}
    internal_ids = {orjson.loads(text).get("participant") for _, text, _ in stored(gateway)} - {None}
    shown = {e.get("participant") for e in entries} - {None}
    assert shown == {p}
    assert not shown & internal_ids
    for item in body["entries"]:
        raw = next(text for seq, text, _ in stored(gateway) if seq == item["seq"])
        assert base64.b64decode(item["leaf_hash"]) == leaf_hash(raw.encode())


def test_every_read_of_the_log_is_itself_logged_before_the_entries_are_returned(gateway: Gateway) -> None:
    gateway.register("amsterdam")
    response = gateway.http.get("/v1/audit/entries", params={"limit": 5}, headers=officer(gateway, "amsterdam"))
    assert response.status_code == 200
    seq = response.json()["audit"]["seq"]
    logged = orjson.loads(next(text for s, text, _ in stored(gateway) if s == seq))
    assert logged["event"] == "audit.read"
    assert logged["decision"] == "permit"
    assert logged["role"] == "privacy_officer"
    assert logged["acting_user"] == "po.001"
    assert logged["organisation"] == "amsterdam"
    assert logged["results"] == len(response.json()["entries"])


def test_a_role_other_than_privacy_officer_is_refused_and_the_refusal_is_logged(gateway: Gateway) -> None:
    gateway.register("amsterdam")
    response = gateway.http.get("/v1/audit/entries", headers=officer(gateway, "amsterdam", role="case_manager"))
    assert response.status_code == 403
    assert "Synthetisch" not in response.text
    seq = response.json()["audit_seq"]
    logged = orjson.loads(next(text for s, text, _ in stored(gateway) if s == seq))
    assert logged["event"] == "audit.read"
    assert logged["decision"] == "deny"
    assert logged["role"] == "case_manager"


def test_the_partner_entries_need_a_valid_token(gateway: Gateway) -> None:
    response = gateway.http.get("/v1/audit/entries", headers={"Acting-User": "x", "Acting-Role": "privacy_officer"})
    assert response.status_code == 401


def test_partner_entries_are_paged_in_log_order(gateway: Gateway) -> None:
    for _ in range(3):
        gateway.register("amsterdam")
    seen: list[int] = []
    after = 0
    while True:
        body = gateway.http.get(
            "/v1/audit/entries", params={"after": after, "limit": 2}, headers=officer(gateway, "amsterdam")
        ).json()
        seen += [e["seq"] for e in body["entries"]]
        if body["next_after"] is None:
            break
        after = body["next_after"]
    own = [seq for seq, _, org in stored(gateway) if org == "amsterdam"]
    # The officer's own reads are entries of its organisation too; every one up to the last page is listed.
    assert seen == [s for s in own if s <= max(seen)]
    assert len(seen) >= 3
