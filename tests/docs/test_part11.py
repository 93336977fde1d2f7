"""docs/part11.md is what the tests' ``part11`` markers say (issue #20, item 4)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from tests import part11


def test_the_page_is_generated_from_the_markers() -> None:
    expected = part11.render(part11.marked_tests())
    assert part11.PAGE.read_text(encoding="utf-8") == expected, (
        "docs/part11.md differs from the markers: run `python -m tests.part11`"
    )


def test_every_row_met_by_software_is_proven_by_a_test() -> None:
    assert not part11.untested(part11.marked_tests()), "mark the tests that prove these rows"


def test_every_marker_names_a_row() -> None:
    assert not part11.unknown_clauses(part11.marked_tests())


def test_every_row_says_who_meets_it() -> None:
    kinds = {part11.SOFTWARE, part11.PROCEDURE, part11.NOT_APPLICABLE}
    assert {clause.met_by for clause in part11.CLAUSES} <= kinds
    assert len(part11.BY_ID) == len(part11.CLAUSES), "two rows share an id"


def test_the_rows_asked_for_are_all_there() -> None:
    ids = set(part11.BY_ID)
    asked = {f"11.10({letter})" for letter in "abcdefghijk"} | {
        "11.30", "11.50", "11.70", "11.100(a)", "11.100(b)", "11.100(c)", "11.200(a)",
        "11.200(b)", "11.300(a)", "11.300(b)", "11.300(c)", "11.300(d)", "11.300(e)",
        "UTC", "accounts", "review",
    }  # fmt: skip
    assert asked <= ids


def test_markers_of_a_file_its_classes_and_its_tests_are_all_read(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        import pytest

        pytestmark = [pytest.mark.integration, pytest.mark.part11("11.10(a)")]

        @pytest.mark.parametrize("x", [1])
        @pytest.mark.part11("11.50", "11.70")
        async def test_signed(x): ...

        def test_plain(): ...

        def helper(): ...

        @pytest.mark.part11("11.10(e)")
        class TestTrail:
            @pytest.mark.part11("UTC")
            def test_times(self): ...
        """
    )
    tests = dict(part11._tests_in(ast.parse(source)))
    assert tests == {
        "test_signed": ["11.10(a)", "11.50", "11.70"],
        "test_plain": ["11.10(a)"],
        "TestTrail::test_times": ["11.10(a)", "11.10(e)", "UTC"],
    }


def test_a_row_that_lost_its_last_test_is_named() -> None:
    marked = part11.marked_tests()
    without = {clause: tests for clause, tests in marked.items() if clause != "11.70"}
    assert part11.untested(without) == ["11.70"]
