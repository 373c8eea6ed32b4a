"""Proofs assembled from stored subtree roots are the RFC 9162 proofs (the merkle module's additions)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.merkle import (
    TreeBuilder,
    compact_range,
    consistency_proof,
    consistency_proof_from_peaks,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_ranges,
    join_subtree,
    leaf_hash,
    peak_ranges,
    root,
)

LEAVES = [leaf_hash(str(i).encode()) for i in range(300)]


@pytest.mark.parametrize("size", range(1, 70))
def test_inclusion_ranges_give_the_rfc_audit_path_for_every_leaf(size: int) -> None:
    for index in range(size):
        ranges = inclusion_proof_ranges(index, size)
        assert [root(LEAVES[s:e]) for s, e in ranges] == inclusion_proof(LEAVES[:size], index)


@pytest.mark.parametrize("new_size", range(1, 70))
def test_consistency_ranges_give_the_rfc_proof_for_every_older_size(new_size: int) -> None:
    for old_size in range(new_size + 1):
        ranges = consistency_proof_ranges(old_size, new_size)
        assert [root(LEAVES[s:e]) for s, e in ranges] == consistency_proof(LEAVES[:new_size], old_size, new_size)


def test_peak_ranges_are_the_perfect_subtrees_a_tree_builder_keeps() -> None:
    for size in range(0, 130):
        builder = TreeBuilder()
        builder.extend(LEAVES[:size])
        assert [root(LEAVES[s:e]) for s, e in peak_ranges(size)] == list(builder.peaks)


@settings(max_examples=300, deadline=None)
@given(old=st.integers(0, 150), extra=st.integers(0, 150))
def test_a_sealer_proves_consistency_from_its_stored_peaks_and_the_new_leaves(old: int, extra: int) -> None:
    builder = TreeBuilder()
    builder.extend(LEAVES[:old])
    proof = consistency_proof_from_peaks(old, builder.peaks, LEAVES[old : old + extra])
    assert proof == consistency_proof(LEAVES[: old + extra], old, old + extra)


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(0, 300), max_size=8))
def test_a_log_hashed_in_separate_ranges_and_joined_in_order_has_the_same_root(cuts: list[int]) -> None:
    bounds = sorted({0, 300, *cuts})
    builder = TreeBuilder()
    for start, end in itertools.pairwise(bounds):
        for s, e in compact_range(start, end):
            join_subtree(builder, root(LEAVES[s:e]), e - s)
        assert builder.size == end
        assert builder.root() == root(LEAVES[:end])


def test_a_subtree_cannot_be_joined_where_it_is_not_aligned() -> None:
    builder = TreeBuilder()
    builder.extend(LEAVES[:3])
    with pytest.raises(ValueError, match="cannot start"):
        join_subtree(builder, LEAVES[0], 2)
    with pytest.raises(ValueError, match="power-of-two"):
        join_subtree(builder, LEAVES[0], 3)
