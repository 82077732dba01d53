"""How ``--help`` renders: flags without a ``<bool>`` placeholder.

Typer's rich help prints each option's type after its name (``--url <str>``), flags included:
``--json <bool>`` reads as if the flag took a value, and every command's ``--help`` showed it.
A flag's metavar, when set, replaces that placeholder, so the root group gives every flag of
every command an empty one when the command is looked up (and its own when help is drawn).
"""

from __future__ import annotations

from typing import Any

import typer.core

__all__ = ["HelpGroup"]


class HelpGroup(typer.core.TyperGroup):
    """The root group of ``aiaas``: its commands' flags render without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        for param in params:
            _untyped(param)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _untype_flags(command, ctx)
        return command


def _untype_flags(command: Any, ctx: Any) -> None:
    for param in command.get_params(ctx):  # includes the command's --help option
        _untyped(param)
    for sub in getattr(command, "commands", {}).values():
        _untype_flags(sub, ctx)


def _untyped(param: Any) -> None:
    if getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""
