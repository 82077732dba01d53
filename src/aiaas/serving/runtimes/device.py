"""Where a PyTorch runtime runs: CUDA in half precision when there is a GPU, else the CPU.

Also the environment every PyTorch runtime sets before importing ``transformers``: offline
(a replica never reaches a model hub; everything it loads is in its materialised folder),
no progress bars or advisory warnings in the server log, tokenizer threads off (the
replica's own threads do the work).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["memory_bytes", "pick", "quiet_offline"]


def quiet_offline() -> None:
    for key, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("HF_HUB_DISABLE_TELEMETRY", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("TOKENIZERS_PARALLELISM", "false"),
    ):
        os.environ.setdefault(key, value)


def pick(device: str) -> tuple[Any, Any]:
    """``(torch.device, dtype)`` for ``auto``, ``cpu`` or ``cuda[:N]``: float16 on CUDA, float32 on CPU.

    Raises:
        ValueError: ``cuda`` asked for where PyTorch sees no GPU.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but PyTorch sees no CUDA GPU")
        return torch.device(device), torch.float16
    return torch.device("cpu"), torch.float32


def memory_bytes(model: Any) -> int:
    """Bytes the model's parameters and buffers take where they live."""
    tensors = [*model.parameters(), *model.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))
