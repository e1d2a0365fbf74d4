"""The interop matrix under pytest: each peer and cell of tests/interop_matrix.py, held to EXPECTED.

All peers run once per session, side by side. A peer that is not installed fails under CI=true
(scripts/system-deps.sh and `make deps` install them all) and skips otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .interop_matrix import (
    CELL_KEYS,
    END,
    EXPECTED,
    PEER_NAMES,
    README,
    START,
    Outcome,
    World,
    expected,
    run_matrix,
)

Results = dict[tuple[str, str], Outcome]


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    world = World(tmp_path_factory.mktemp("interop-matrix"))
    try:
        available = [name for name in PEER_NAMES if world.peer(name).available()]
        rows = run_matrix(world, available) if available else []
    finally:
        world.close()
    yield {(name, cell.key): outcome for name, _version, cell, outcome in rows}


@pytest.mark.slow
@pytest.mark.parametrize("cell", CELL_KEYS)
@pytest.mark.parametrize("peer", PEER_NAMES)
def test_cell(matrix: Results, peer: str, cell: str) -> None:
    if (peer, cell) not in matrix:
        if os.environ.get("CI"):
            pytest.fail(f"{peer} is required in CI: scripts/system-deps.sh / make deps install it")
        pytest.skip(f"{peer} is not installed")
    outcome = matrix[(peer, cell)]
    assert outcome.status == expected(peer, cell), outcome.detail
    assert outcome.detail  # every result says what the peer did or why it cannot


def test_expectations_name_only_known_peers_and_cells() -> None:
    assert set(EXPECTED) == set(PEER_NAMES)
    for cells in EXPECTED.values():
        assert set(cells) <= set(CELL_KEYS)


def test_readme_table_agrees_with_the_expectations() -> None:
    """The committed table (scripts/interop-matrix) shows every cell with its expected result."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index(START) + len(START) : text.index(END)]
    rows = [line.split(" | ") for line in table.strip().splitlines()[2:]]
    assert len(rows) == len(PEER_NAMES) * len(CELL_KEYS)
    titles = _titles()
    for row in rows:
        peer, cell_title, result = row[0].lstrip("| "), row[2], row[3]
        status = result.split("**")[1]
        assert status == expected(peer, titles[cell_title]), row


def _titles() -> dict[str, str]:
    from .interop_matrix import CELLS

    return {cell.title: cell.key for cell in CELLS}


def test_the_generator_script_exists() -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "interop-matrix"
    assert os.access(script, os.X_OK)
