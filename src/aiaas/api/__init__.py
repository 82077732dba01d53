"""The control plane: the REST API under ``/api/v1`` that the CLI, SDK and UI speak."""

from __future__ import annotations

from aiaas.api.app import create_app

__all__ = ["create_app"]
