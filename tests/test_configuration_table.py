"""The README's configuration table says what :class:`aiaas.config.Settings` does: one row per
setting, named by its environment variable, with the default the code uses.

A setting added to the code without a row (or a row left behind by a removed setting, or a
default changed on one side only) fails here, naming the variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic.fields import FieldInfo

from aiaas.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"

#: Units the table writes sizes in.
_UNITS = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_NUMBER = re.compile(r"^([0-9][0-9,_]*(?:\.[0-9]+)?)\s*(KiB|MiB|GiB)?$")
#: ``<home>/name`` in a setting's description: its default is a path under AIAAS_HOME.
_UNDER_HOME = re.compile(r"<home>/([\w-]+(?:\.\w+)*)")


def _table() -> dict[str, tuple[str, str]]:
    """Variable -> (default, meaning) from the rows under ``## Configuration``."""
    text = README.read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`AIAAS_"):
            variable = cells[0].strip("`")
            assert variable not in rows, f"{variable} has two rows in the README's configuration table"
            rows[variable] = (cells[1], " | ".join(cells[2:]))
    return rows


def _variable(name: str) -> str:
    return f"AIAAS_{name.upper()}"


def _written(cell: str) -> Any:
    """A default as the table writes it, as a value: ``64 MiB`` -> 67108864, ``true`` -> True."""
    plain = cell.strip("`")
    if plain in ("true", "false"):
        return plain == "true"
    match = _NUMBER.match(plain)
    if match:
        number = float(match.group(1).replace(",", "").replace("_", ""))
        return number * _UNITS.get(match.group(2) or "", 1)
    return plain


FIELDS = sorted(Settings.model_fields.items())


def test_every_setting_has_a_row_and_every_row_a_setting() -> None:
    rows = set(_table())
    settings = {_variable(name) for name, _ in FIELDS}
    assert not settings - rows, (
        f"settings missing from the README's configuration table: {sorted(settings - rows)}"
    )
    assert not rows - settings, (
        f"rows of the README's configuration table that are no setting: {sorted(rows - settings)}"
    )


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[_variable(n) for n, _ in FIELDS])
def test_the_table_gives_the_default_the_code_uses(name: str, field: FieldInfo) -> None:
    variable = _variable(name)
    default, meaning = _table().get(variable, ("", ""))
    assert default and meaning, f"{variable}: no row, or an empty default or meaning, in the README's table"
    if field.default_factory is not None or field.default is None:
        # Computed (the CPU count) or derived from other settings: the table says from what.
        for under_home in _UNDER_HOME.findall(field.description or ""):
            assert f"$AIAAS_HOME/{under_home}" in default, (
                f"{variable}: the code's default is <home>/{under_home}, the README's {default}"
            )
        return
    expected = field.default
    written = _written(default)
    want = expected if isinstance(expected, bool | int | float) else str(expected)
    assert written == want, f"{variable}: the code's default is {expected!r}, the README's {default}"
