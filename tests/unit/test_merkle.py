"""RFC 9162 Merkle tree hashing and proofs, checked against a recursive reference written from the RFC.

The reference below is the RFC's recursive definitions (MTH, PATH, PROOF/SUBPROOF) transcribed
directly, with its own hashing, so that both the module and the known-answer constants (the test
vectors of transparency-dev/merkle, formerly Trillian) are checked against something independent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import writer
from gateway.audit.merkle import (
    EMPTY_ROOT,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# --- the reference: RFC 9162 section 2.1, recursively, over entries --------------------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + d[0])
    k = _largest_power_of_two_below(n)
    return _sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def ref_path_length(m: int, n: int) -> int:
    """Return len(PATH(m, D[n])) by the same recursion, without hashing."""
    if n == 1:
        return 0
    k = _largest_power_of_two_below(n)
    return 1 + (ref_path_length(m, k) if m < k else ref_path_length(m - k, n - k))


def ref_proof_length(m: int, n: int, b: bool = True) -> int:
    """Return len(SUBPROOF(m, D[n], b)) by the same recursion, without hashing."""
    if m == n:
        return 0 if b else 1
    k = _largest_power_of_two_below(n)
    return 1 + (ref_proof_length(m, k, b) if m <= k else ref_proof_length(m - k, n - k, False))


def leaves_of(entries: Sequence[bytes]) -> list[bytes]:
    return [_sha256(b"\x00" + e) for e in entries]


# --- known answers: the transparency-dev/merkle (Trillian) reference tree ---------------------------

REFERENCE_ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
REFERENCE_LEAVES = leaves_of(REFERENCE_ENTRIES)

KNOWN_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

# (leaf index, tree size, audit path); indices are 0-based here.
KNOWN_INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (old size, new size, consistency proof)
KNOWN_CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# A larger tree for exhaustive and property tests: entries are b"entry 0", b"entry 1", ...
ENTRIES = [b"entry %d" % i for i in range(2048)]
LEAVES = leaves_of(ENTRIES)
MAX_EXHAUSTIVE = 64
SMALL_ROOTS = [ref_mth(ENTRIES[:n]) for n in range(MAX_EXHAUSTIVE + 1)]
OTHER_HASH = _sha256(b"not a node of this tree")


def unhex(hashes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


def flipped(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]


# --- hashing ---------------------------------------------------------------------------------------


def test_the_empty_tree_has_the_hash_of_the_empty_string_as_its_root() -> None:
    empty = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert ref_mth([]) == empty
    assert EMPTY_ROOT == empty
    assert root([]) == empty
    assert TreeBuilder().root() == empty


def test_leaf_and_node_hashes_carry_the_rfc_domain_separation_prefixes() -> None:
    left, right = _sha256(b"left"), _sha256(b"right")
    assert leaf_hash(b"entry") == _sha256(b"\x00entry")
    assert node_hash(left, right) == _sha256(b"\x01" + left + right)
    assert leaf_hash(left + right) != node_hash(left, right)


@pytest.mark.parametrize("entry", [b"", b"\x00", b'{"seq":1}', "überweisung".encode()])
def test_the_leaf_hash_is_the_one_the_audit_writer_stores(entry: bytes) -> None:
    assert leaf_hash(entry) == writer.leaf_hash(entry)


# --- known answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "expected"), sorted(KNOWN_ROOTS.items()))
def test_the_reference_tree_has_the_known_root_at_every_size(size: int, expected: str) -> None:
    assert ref_mth(REFERENCE_ENTRIES[:size]).hex() == expected
    assert root(REFERENCE_LEAVES[:size]).hex() == expected
    builder = TreeBuilder()
    builder.extend(REFERENCE_LEAVES[:size])
    assert builder.root().hex() == expected


@pytest.mark.parametrize(("index", "size", "expected"), KNOWN_INCLUSION_PROOFS)
def test_known_inclusion_proofs_are_produced_and_verify(index: int, size: int, expected: list[str]) -> None:
    assert ref_path(index, REFERENCE_ENTRIES[:size]) == unhex(expected)
    proof = inclusion_proof(REFERENCE_LEAVES[:size], index)
    assert proof == unhex(expected)
    assert verify_inclusion(REFERENCE_LEAVES[index], index, size, proof, bytes.fromhex(KNOWN_ROOTS[size]))


@pytest.mark.parametrize(("old_size", "new_size", "expected"), KNOWN_CONSISTENCY_PROOFS)
def test_known_consistency_proofs_are_produced_and_verify(old_size: int, new_size: int, expected: list[str]) -> None:
    assert ref_proof(old_size, REFERENCE_ENTRIES[:new_size]) == unhex(expected)
    proof = consistency_proof(REFERENCE_LEAVES, old_size, new_size)
    assert proof == unhex(expected)
    old_root, new_root = bytes.fromhex(KNOWN_ROOTS[old_size]), bytes.fromhex(KNOWN_ROOTS[new_size])
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)


# --- exhaustive agreement with the reference on small trees ----------------------------------------


@pytest.mark.parametrize("size", range(1, MAX_EXHAUSTIVE + 1))
def test_every_inclusion_proof_equals_the_rfc_path_and_verifies(size: int) -> None:
    tree_root = SMALL_ROOTS[size]
    assert root(LEAVES[:size]) == tree_root
    for index in range(size):
        proof = inclusion_proof(LEAVES[:size], index)
        assert proof == ref_path(index, ENTRIES[:size])
        assert len(proof) == ref_path_length(index, size)
        assert verify_inclusion(LEAVES[index], index, size, proof, tree_root)


@pytest.mark.parametrize("new_size", range(1, MAX_EXHAUSTIVE + 1))
def test_every_consistency_proof_equals_the_rfc_proof_and_verifies(new_size: int) -> None:
    for old_size in range(1, new_size + 1):
        proof = consistency_proof(LEAVES, old_size, new_size)
        assert proof == ref_proof(old_size, ENTRIES[:new_size])
        assert len(proof) == ref_proof_length(old_size, new_size)
        assert verify_consistency(old_size, new_size, SMALL_ROOTS[old_size], SMALL_ROOTS[new_size], proof)


# --- tampering -------------------------------------------------------------------------------------

TAMPER_SIZES = [1, 2, 3, 5, 8, 13, 21, 32, 33]


@pytest.mark.parametrize("size", TAMPER_SIZES)
def test_flipping_any_byte_of_any_inclusion_proof_element_breaks_the_proof(size: int) -> None:
    for index in range(size):
        proof = inclusion_proof(LEAVES[:size], index)
        for element in range(len(proof)):
            for position in range(len(proof[element])):
                tampered = proof.copy()
                tampered[element] = flipped(proof[element], position)
                assert not verify_inclusion(LEAVES[index], index, size, tampered, SMALL_ROOTS[size])


@pytest.mark.parametrize("size", TAMPER_SIZES)
def test_an_inclusion_proof_fails_for_another_index_leaf_or_root(size: int) -> None:
    tree_root = SMALL_ROOTS[size]
    for index in range(size):
        proof = inclusion_proof(LEAVES[:size], index)
        for other in range(size):
            if other != index:
                assert not verify_inclusion(LEAVES[index], other, size, proof, tree_root)
                assert not verify_inclusion(LEAVES[other], index, size, proof, tree_root)
        assert not verify_inclusion(flipped(LEAVES[index], 0), index, size, proof, tree_root)
        for position in range(len(tree_root)):
            assert not verify_inclusion(LEAVES[index], index, size, proof, flipped(tree_root, position))
        assert not verify_inclusion(LEAVES[index], index, size, proof, EMPTY_ROOT)


@pytest.mark.parametrize("size", range(1, MAX_EXHAUSTIVE + 1))
def test_an_inclusion_proof_fails_for_a_size_whose_audit_path_has_another_shape(size: int) -> None:
    for index in range(size):
        proof = inclusion_proof(LEAVES[:size], index)
        for other_size in range(index + 1, 2 * size + 1):
            if ref_path_length(index, other_size) != len(proof):
                assert not verify_inclusion(LEAVES[index], index, other_size, proof, SMALL_ROOTS[size])
        assert not verify_inclusion(LEAVES[index], index, 2 * size, proof, SMALL_ROOTS[size])


def test_the_tree_size_is_bound_by_the_signed_checkpoint_not_by_the_proof() -> None:
    # Leaf 0 has the same audit path shape in trees of 3 and 4 leaves, so the RFC algorithm accepts
    # the size-3 proof under a claimed size of 4 against the size-3 root. Checkpoints must therefore
    # sign the size together with the root, and verifiers must take both from the checkpoint.
    proof = inclusion_proof(LEAVES[:3], 0)
    assert verify_inclusion(LEAVES[0], 0, 4, proof, SMALL_ROOTS[3])
    assert not verify_inclusion(LEAVES[0], 0, 4, proof, SMALL_ROOTS[4])


@pytest.mark.parametrize("size", range(1, MAX_EXHAUSTIVE + 1))
def test_inclusion_proofs_of_the_wrong_length_fail(size: int) -> None:
    for index in range(size):
        proof = inclusion_proof(LEAVES[:size], index)
        leaf, tree_root = LEAVES[index], SMALL_ROOTS[size]
        assert not verify_inclusion(leaf, index, size, [*proof, OTHER_HASH], tree_root)
        assert not verify_inclusion(leaf, index, size, [*proof, tree_root], tree_root)
        assert not verify_inclusion(leaf, index, size, [OTHER_HASH, *proof], tree_root)
        if proof:
            assert not verify_inclusion(leaf, index, size, proof[:-1], tree_root)
            assert not verify_inclusion(leaf, index, size, proof[1:], tree_root)


def test_an_inclusion_proof_for_an_index_outside_the_tree_fails() -> None:
    assert not verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)
    assert not verify_inclusion(LEAVES[1], 1, 1, [], LEAVES[1])
    assert not verify_inclusion(LEAVES[0], -1, 1, [], LEAVES[0])
    assert not verify_inclusion(LEAVES[8], 8, 8, inclusion_proof(LEAVES[:8], 7), SMALL_ROOTS[8])


def test_a_one_leaf_tree_proves_its_leaf_with_an_empty_path() -> None:
    assert inclusion_proof(LEAVES[:1], 0) == []
    assert verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    assert not verify_inclusion(LEAVES[1], 0, 1, [], LEAVES[0])


@pytest.mark.parametrize("new_size", TAMPER_SIZES[1:])
def test_flipping_any_byte_of_any_consistency_proof_element_breaks_the_proof(new_size: int) -> None:
    for old_size in range(1, new_size):
        proof = consistency_proof(LEAVES, old_size, new_size)
        for element in range(len(proof)):
            for position in range(len(proof[element])):
                tampered = proof.copy()
                tampered[element] = flipped(proof[element], position)
                assert not verify_consistency(
                    old_size, new_size, SMALL_ROOTS[old_size], SMALL_ROOTS[new_size], tampered
                )


@pytest.mark.parametrize("new_size", range(2, MAX_EXHAUSTIVE + 1))
def test_a_consistency_proof_fails_for_other_sizes_roots_or_proof_lengths(new_size: int) -> None:
    new_root = SMALL_ROOTS[new_size]
    for old_size in range(1, new_size):
        proof = consistency_proof(LEAVES, old_size, new_size)
        old_root = SMALL_ROOTS[old_size]
        for other_old in range(new_size + 1):
            if other_old != old_size:
                assert not verify_consistency(other_old, new_size, old_root, new_root, proof)
        for other_new in range(old_size, 2 * new_size + 1):
            if ref_proof_length(old_size, other_new) != len(proof):
                assert not verify_consistency(old_size, other_new, old_root, new_root, proof)
        assert not verify_consistency(old_size, new_size, new_root, old_root, proof)
        assert not verify_consistency(old_size, new_size, flipped(old_root, 31), new_root, proof)
        assert not verify_consistency(old_size, new_size, old_root, flipped(new_root, 0), proof)
        assert not verify_consistency(old_size, new_size, old_root, new_root, [])
        assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, OTHER_HASH])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, new_root])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [OTHER_HASH, *proof])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [proof[0], *proof])


def test_a_tree_cannot_be_consistent_with_a_larger_earlier_tree() -> None:
    proof = consistency_proof(LEAVES, 5, 9)
    assert not verify_consistency(9, 5, SMALL_ROOTS[9], SMALL_ROOTS[5], proof)
    assert not verify_consistency(9, 5, SMALL_ROOTS[5], SMALL_ROOTS[9], proof)
    assert not verify_consistency(9, 5, SMALL_ROOTS[9], SMALL_ROOTS[9], [])
    assert not verify_consistency(1, 0, SMALL_ROOTS[1], EMPTY_ROOT, [])
    assert not verify_consistency(-1, 3, EMPTY_ROOT, SMALL_ROOTS[3], [])


def test_a_tree_is_consistent_with_itself_only_by_an_empty_proof_and_equal_roots() -> None:
    assert consistency_proof(LEAVES, 7, 7) == []
    assert verify_consistency(7, 7, SMALL_ROOTS[7], SMALL_ROOTS[7], [])
    assert not verify_consistency(7, 7, SMALL_ROOTS[7], SMALL_ROOTS[6], [])
    assert not verify_consistency(7, 7, SMALL_ROOTS[7], SMALL_ROOTS[7], [SMALL_ROOTS[7]])


def test_the_empty_tree_is_consistent_with_every_tree_by_an_empty_proof() -> None:
    assert consistency_proof(LEAVES, 0, 5) == []
    assert consistency_proof(LEAVES, 0, 0) == []
    assert verify_consistency(0, 5, EMPTY_ROOT, SMALL_ROOTS[5], [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, SMALL_ROOTS[5], [EMPTY_ROOT])
    assert not verify_consistency(0, 5, SMALL_ROOTS[1], SMALL_ROOTS[5], [])
    assert not verify_consistency(0, 0, SMALL_ROOTS[1], SMALL_ROOTS[1], [])


def test_proofs_are_not_made_for_leaves_or_sizes_outside_the_tree() -> None:
    with pytest.raises(IndexError):
        inclusion_proof(LEAVES[:4], 4)
    with pytest.raises(IndexError):
        inclusion_proof(LEAVES[:4], -1)
    with pytest.raises(IndexError):
        inclusion_proof([], 0)
    with pytest.raises(ValueError, match="old_size"):
        consistency_proof(LEAVES[:4], 3, 5)
    with pytest.raises(ValueError, match="old_size"):
        consistency_proof(LEAVES[:4], 4, 3)
    with pytest.raises(ValueError, match="old_size"):
        consistency_proof(LEAVES[:4], -1, 3)


# --- the incremental builder -----------------------------------------------------------------------


def test_the_tree_builder_gives_the_rfc_root_at_every_size_up_to_300() -> None:
    builder = TreeBuilder()
    for size in range(1, 301):
        builder.append(LEAVES[size - 1])
        assert builder.size == size
        assert builder.root() == root(LEAVES[:size])
        assert len(builder.peaks) == size.bit_count()
    assert builder.root() == ref_mth(ENTRIES[:300])


def test_the_tree_builder_gives_the_same_root_as_root_for_100000_leaves() -> None:
    leaves = [_sha256(i.to_bytes(4, "big")) for i in range(100_000)]
    builder = TreeBuilder()
    builder.extend(leaves)
    assert builder.size == 100_000
    assert len(builder.peaks) == (100_000).bit_count()
    assert builder.root() == root(leaves)


def test_a_resumed_tree_builder_continues_the_same_tree() -> None:
    first = TreeBuilder()
    first.extend(LEAVES[:37])
    resumed = TreeBuilder.resume(first.size, first.peaks)
    resumed.extend(LEAVES[37:100])
    assert resumed.size == 100
    assert resumed.root() == root(LEAVES[:100])


def test_a_tree_builder_refuses_state_that_cannot_be_a_tree() -> None:
    with pytest.raises(ValueError, match="peaks"):
        TreeBuilder.resume(5, [LEAVES[0]])
    with pytest.raises(ValueError, match="peaks"):
        TreeBuilder.resume(-1, [])
    with pytest.raises(ValueError, match="32-byte"):
        TreeBuilder.resume(1, [b"short"])
    with pytest.raises(ValueError, match="32 bytes"):
        TreeBuilder().append(b"not a hash")


# --- properties over larger trees ------------------------------------------------------------------


def with_one_leaf_changed(leaves: list[bytes], position: int) -> list[bytes]:
    changed = leaves.copy()
    changed[position] = _sha256(b"\x00" + b"changed " + ENTRIES[position])
    return changed


@settings(max_examples=300, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=2000))
def test_inclusion_proofs_verify_and_never_verify_against_a_tree_with_one_leaf_changed(
    data: st.DataObject, size: int
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    changed_at = data.draw(st.integers(min_value=0, max_value=size - 1), label="changed_at")
    leaves = LEAVES[:size]
    tree_root = root(leaves)
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, size, proof, tree_root)
    other_root = root(with_one_leaf_changed(leaves, changed_at))
    assert other_root != tree_root
    assert not verify_inclusion(leaves[index], index, size, proof, other_root)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), new_size=st.integers(min_value=1, max_value=2000))
def test_consistency_proofs_verify_and_never_verify_against_a_tree_with_one_leaf_changed(
    data: st.DataObject, new_size: int
) -> None:
    old_size = data.draw(st.integers(min_value=1, max_value=new_size), label="old_size")
    changed_at = data.draw(st.integers(min_value=0, max_value=new_size - 1), label="changed_at")
    leaves = LEAVES[:new_size]
    old_root, new_root = root(leaves[:old_size]), root(leaves)
    proof = consistency_proof(leaves, old_size, new_size)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    changed = with_one_leaf_changed(leaves, changed_at)
    assert not verify_consistency(old_size, new_size, old_root, root(changed), proof)
    if changed_at < old_size:
        assert not verify_consistency(old_size, new_size, root(changed[:old_size]), new_root, proof)
