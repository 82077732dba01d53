"""``aiaas deploy``'s setting options, made from the settings' one definition.

Each settable value of :class:`aiaas.schemas.DeploymentSettings` becomes an option (a nested
setting's keys behind its prefix: ``--log-sample-rate``; a nested ``enabled`` switch:
``--batching/--no-batching``), with the field's help, unit and default. A new setting gets
its options without a change here, and the options can never disagree with the API about a
name, a type or a default.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from aiaas.schemas.deployment_settings import SettingLeaf, setting_leaves
from aiaas.schemas.setting_values import optional

__all__ = ["setting_options", "settings_given"]

_F = TypeVar("_F", bound=Callable[..., Any])


def setting_options(command: _F) -> _F:
    """Give ``command`` (which ends in ``**settings``) one option per setting: its signature is
    rewritten for typer, and the values arrive in ``settings`` by parameter name."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    options = [
        inspect.Parameter(
            leaf.param,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[optional(leaf.info.annotation), typer.Option(leaf.flag, help=_help(leaf))],
        )
        for leaf in setting_leaves()
    ]
    clash = {p.name for p in own} & {p.name for p in options}
    if clash:
        raise TypeError(f"{command.__name__}: parameters clash with setting options: {sorted(clash)}")

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *sorted(options, key=lambda p: p.kind)]
    )
    return wrapper  # type: ignore[return-value]


def settings_given(options: dict[str, Any]) -> dict[str, Any]:
    """The options given (not ``None``) as settings: ``{"batching": {"enabled": True}, ...}``."""
    out: dict[str, Any] = {}
    for leaf in setting_leaves():
        value = options.get(leaf.param)
        if value is None:
            continue
        name, _, key = leaf.path.partition(".")
        if key:
            out.setdefault(name, {})[key] = value
        else:
            out[name] = value
    return out


def _help(leaf: SettingLeaf) -> str:
    """The field's help and its default (with the unit when it is one of time)."""
    text = (leaf.info.description or leaf.path).rstrip(".")
    value = leaf.default
    if isinstance(value, bool):
        default = "on" if value else "off"
    else:
        unit = f" {leaf.unit}" if leaf.unit in ("s", "ms") else ""
        default = (f"{value:g}" if isinstance(value, float) else str(value)) + unit
    return f"{text} (default {default}; unchanged when omitted)."
