"""Name rules: what fits in a URL is accepted, aliases never look like version numbers."""

from __future__ import annotations

import pytest

from aiaas.errors import InvalidArgument
from aiaas.registry import check_alias_name, check_name


@pytest.mark.parametrize("name", ["iris", "A", "9lives", "iris-v2.onnx_1", "x" * 128])
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("alias", ["production", "p", "canary_2", "Blue-Green", "a" * 64])
def test_valid_aliases_are_returned_unchanged(alias: str) -> None:
    assert check_alias_name(alias) == alias


def test_name_errors_name_the_field() -> None:
    with pytest.raises(InvalidArgument, match="deployment must be 1-128 characters") as info:
        check_name(".hidden", field="deployment")
    assert info.value.details == {"field": "deployment", "value": ".hidden"}


@pytest.mark.parametrize("value", [None, 3, b"iris"])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidArgument):
        check_name(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        check_alias_name(value)  # type: ignore[arg-type]
