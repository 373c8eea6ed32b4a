"""The verifier's bulk hashing gives exactly the merkle module's hashes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import merkle
from gateway.audit.fasthash import leaf_hashes_of_file, leaf_hashes_of_lines, level_up, tree_root


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80).filter(lambda b: b"\n" not in b), max_size=70))
def test_bulk_leaf_hashes_equal_the_rfc_leaf_hash_of_every_line(lines: list[bytes]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    assert leaf_hashes_of_lines(data) == [merkle.leaf_hash(line) for line in lines]


@pytest.mark.parametrize("size", range(0, 140))
def test_the_bulk_tree_root_equals_the_rfc_root(size: int) -> None:
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(size)]
    assert tree_root(leaves) == merkle.root(leaves)


def test_one_level_up_pairs_neighbours_and_carries_an_odd_last_node() -> None:
    level = [merkle.leaf_hash(bytes([i])) for i in range(5)]
    up = level_up(level)
    assert up == [merkle.node_hash(level[0], level[1]), merkle.node_hash(level[2], level[3]), level[4]]


def test_data_without_a_final_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="newline"):
        leaf_hashes_of_lines(b"{}")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=80).filter(lambda b: b"\n" not in b), max_size=40),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b),
    st.sampled_from([1, 2, 3, 7, 64, 4096]),
)
def test_hashing_a_file_by_chunks_gives_the_rfc_leaf_hash_of_every_line(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], unterminated: bytes, chunk: int
) -> None:
    """Lines that cross chunks, lines longer than a chunk, a last line without its newline: all one leaf each."""
    path = tmp_path_factory.mktemp("lines") / "segment.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines) + unterminated)
    expected = [merkle.leaf_hash(line) for line in lines] + ([merkle.leaf_hash(unterminated)] if unterminated else [])
    assert leaf_hashes_of_file(path, chunk) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=300))
def test_the_bulk_tree_root_of_any_leaves_equals_the_rfc_root(leaves: list[bytes]) -> None:
    assert tree_root(leaves) == merkle.root(leaves)
