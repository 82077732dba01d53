"""Every docstring example in ``src/aiaas`` runs and shows what it says.

One test per module, so a failure names the module; an example that needs a running server or
a trained model says so with ``# doctest: +SKIP`` beside it. Examples run in an empty folder of
their own (a relative path they write lands there) and without the caller's ``AIAAS_*``
variables, as a reader trying them would.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
from pathlib import Path

import pytest

import aiaas

#: Modules that run a program when imported (``python -m``): nothing to document there.
_ENTRY_POINTS = ("__main__",)


def _modules() -> list[str]:
    names = ["aiaas"]
    for info in pkgutil.walk_packages(aiaas.__path__, prefix="aiaas."):
        if info.name.rsplit(".", 1)[-1] not in _ENTRY_POINTS:
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("AIAAS_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures: list[str] = []
    for test in finder.find(module, name, module=module):
        if test.examples:
            out: list[str] = []
            result = runner.run(test, out=out.append, clear_globs=True)
            if result.failed:
                failures.append("".join(out))
    assert not failures, "\n".join(failures)
