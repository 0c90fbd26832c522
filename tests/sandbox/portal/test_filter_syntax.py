"""The filter parser builds the tree the RFC 7644 grammar and precedence call for."""

from __future__ import annotations

import pytest

from sandbox.portal.errors import ScimError
from sandbox.portal.filter_syntax import And, Compare, Not, Or, Present, ValuePath, parse


def test_and_binds_tighter_than_or() -> None:
    assert parse('a eq "1" or b eq "2" and c pr') == Or(
        Compare("a", "eq", "1"), And(Compare("b", "eq", "2"), Present("c"))
    )


def test_brackets_and_not_group() -> None:
    assert parse("not (a eq 1 or b eq true) and c eq null") == And(
        Not(Or(Compare("a", "eq", 1), Compare("b", "eq", True))), Compare("c", "eq", None)
    )


def test_value_path_with_logic_inside() -> None:
    assert parse('emails[type eq "work" and not (value ew ".se")]') == ValuePath(
        "emails", And(Compare("type", "eq", "work"), Not(Compare("value", "ew", ".se")))
    )


def test_operators_are_case_insensitive_and_strings_are_json() -> None:
    assert parse(r'userName EQ "a\"b\u00e5"') == Compare("userName", "eq", 'a"bå')


def test_urn_prefixed_paths_stay_whole() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"

    assert parse(f'{urn} eq "x"') == Compare(urn, "eq", "x")


@pytest.mark.parametrize("text", ["", "a", "a eq", 'a eq "x" b', "not a eq 1", "a eq TRUE"])
def test_malformed_filters_raise_invalid_filter(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse(text)

    assert caught.value.scim_type == "invalidFilter"
