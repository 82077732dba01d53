"""The Python SDK: ``aiaas.Client``, a typed client of the control plane and inference server."""

from __future__ import annotations

from aiaas.sdk.client import Client

__all__ = ["Client"]
