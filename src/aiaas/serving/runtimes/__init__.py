"""Runtimes a replica process can load besides ONNX Runtime: one small interface, one factory.

The replica (:mod:`aiaas.serving.replica_process`) reads frames from the front and hands each to its
runtime; a runtime with work of its own between frames (a language model decoding, one
token per step for every sequence in its batch) says so with :meth:`Runtime.busy`, and the
replica then calls :meth:`Runtime.step` whenever no frame is waiting. Frames a runtime
answers with are already encoded (:mod:`aiaas.serving.ipc`).

Like the replica itself, this package runs as plain modules in the replica process (the
``runtimes`` package beside ``replica_process.py``), never through the ``aiaas`` package, and imports
PyTorch only in the runtime that needs it, when it is created.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

__all__ = ["RUNTIMES", "Runtime", "create"]

#: Runtime name (a folder flavor) → module of this package that implements it.
RUNTIMES = {"hf-causal-lm": "generation", "hf-embedding": "embedding"}


class Runtime(Protocol):
    """What a replica needs of a loaded model."""

    #: Facts about the loaded model, sent to the front in the READY frame (JSON-ready).
    info: dict[str, Any]

    def handle(self, kind: int, request_id: int, body: memoryview) -> list[bytes]:
        """Take one frame from the front; the frames to answer with now (maybe none)."""
        ...

    def busy(self) -> bool:
        """True while the runtime has work to do without a new frame."""
        ...

    def step(self) -> list[bytes]:
        """Do one unit of that work (one decoding step); the frames it produced."""
        ...


def create(spec: dict[str, Any]) -> Runtime:
    """Load the runtime that ``spec["runtime"]`` names, with the rest of ``spec`` as its options.

    Raises:
        ValueError: an unknown runtime name.
    """
    name = spec.get("runtime")
    module_name = RUNTIMES.get(str(name))
    if module_name is None:
        raise ValueError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    package = __name__  # "runtimes" in a replica, "aiaas.serving.runtimes" when imported normally
    module = importlib.import_module(f"{package}.{module_name}")
    runtime: Runtime = module.load(spec)
    return runtime
