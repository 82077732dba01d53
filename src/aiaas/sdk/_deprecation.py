"""Old SDK method names kept for one release after a rename, warning on use.

One helper for every renamed method, so that a rename costs one line and each old name says
the same thing: which method replaces it and that it goes away in the next release.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["renamed"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def renamed(method: Callable[_P, _R], old: str) -> Callable[_P, _R]:
    """``method`` under its former name ``old``: the same call, plus a ``DeprecationWarning``
    naming the new method (``stacklevel`` points the warning at the caller's line).

    Use it in the class body, after the method: ``datasets = renamed(list_datasets, "datasets")``.
    """
    new = method.__name__

    @functools.wraps(method)
    def old_name(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        warnings.warn(
            f"{old}() is deprecated and will be removed in the next release; use {new}()",
            DeprecationWarning,
            stacklevel=2,
        )
        return method(*args, **kwargs)

    old_name.__name__ = old_name.__qualname__ = old
    old_name.__doc__ = f"Deprecated, removed in the next release: use :meth:`{new}`."
    return old_name
