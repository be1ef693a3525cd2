"""docs/parameters.md is exactly what the parameter table renders."""

from pathlib import Path

from mailseal.config.model import PARAMS
from mailseal.config.reference import render_reference
from mailseal.testing.golden import assert_golden

DOCS = Path(__file__).parents[3] / "docs" / "parameters.md"


def test_reference_matches_the_table() -> None:
    assert_golden(render_reference(), DOCS)


def test_reference_has_one_row_per_parameter() -> None:
    rows = [line for line in render_reference().splitlines() if line.startswith("| `")]
    assert len(rows) == len(PARAMS)
