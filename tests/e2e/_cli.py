"""The real ``aiaas`` console script in a terminal of a given width, and what a readable table is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import Platform

__all__ = ["assert_readable", "console_script"]


def console_script(platform: Platform, *args: str, columns: int = 80) -> str:
    """The real ``aiaas`` command in a terminal ``columns`` wide; its stdout."""
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("aiaas")),
            "--url",
            platform.api_url,
            "--inference-url",
            platform.inference_url,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_readable(out: str, *whole: str, columns: int = 80) -> None:
    """Fits the width, cuts nothing, splits no word over two lines, prints no 16-digit float."""
    too_wide = [line for line in out.splitlines() if len(line) > columns]
    assert not too_wide, "\n".join(too_wide)
    assert "…" not in out, out
    for text in whole:
        assert text in out, f"{text!r} is cut or folded in:\n{out}"
    assert not re.search(r"\d\.\d{6,}", out), f"unrounded float in:\n{out}"
