"""The Claude Code page carries the release x tool matrix the tests produced, as it is.

`make claude-code-matrix` writes docs/claude-code-matrix.json from a run of the tool tests
(tests/claude_code/test_tools.py and test_side_tools.py); the page's table must be that
file, rendered, and cover exactly the pinned releases.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.claude_code.tools import COVERED, NOT_TESTABLE, markdown
from tests.support.claude_code import PINNED

ROOT = Path(__file__).resolve().parent.parent
MATRIX = json.loads((ROOT / "docs" / "claude-code-matrix.json").read_text())
PAGE = (ROOT / "docs" / "02-claude-code.md").read_text()


def test_the_matrix_covers_the_pinned_releases():
    assert sorted(MATRIX) == sorted(PINNED)


def test_the_page_shows_the_matrix_the_tests_wrote():
    assert markdown(MATRIX) in PAGE


def test_every_tool_in_the_matrix_was_tested_or_says_why_not():
    for version, row in MATRIX.items():
        for tool, status in row.items():
            assert status != "not tested", (version, tool)
            assert tool in COVERED or tool in NOT_TESTABLE, (version, tool)


def test_the_page_names_the_pinned_releases():
    for version in PINNED:
        assert f"**{version}**" in PAGE
