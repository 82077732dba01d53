"""The ``aiaas`` command line: a client of the REST API, plus ``up`` to run the platform."""

from __future__ import annotations

from aiaas.cli.main import app, main

__all__ = ["app", "main"]
