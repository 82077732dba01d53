"""Checkpoint and state bytes: safe to load, and complete enough to resume exactly.

A PyTorch checkpoint is ``torch.save`` of a dict of plain values and tensors only, read
back with ``torch.load(weights_only=True)``, which refuses anything but tensors and
primitive containers: a checkpoint (or a warm-start state from the registry) can never run
code when loaded. Random number generator states are stored as tensors for the same reason.

A scikit-learn state is an ``.npz`` of plain arrays read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import random
import zipfile
from typing import Any

import numpy as np
import torch

from aiaas.errors import InvalidArgument

__all__ = [
    "SKLEARN_FORMAT",
    "TORCH_FORMAT",
    "capture_rng",
    "load_npz",
    "load_torch_state",
    "restore_rng",
    "save_npz",
    "save_torch_state",
    "state_format",
]

TORCH_FORMAT = "aiaas.torch/1"
SKLEARN_FORMAT = "aiaas.sklearn/1"


def save_torch_state(state: dict[str, Any]) -> bytes:
    """Serialise a dict of tensors and plain values."""
    buffer = io.BytesIO()
    torch.save({"format": TORCH_FORMAT, **state}, buffer)
    return buffer.getvalue()


def load_torch_state(data: bytes, *, field: str) -> dict[str, Any]:
    """Read bytes of :func:`save_torch_state`, refusing anything else.

    Raises:
        InvalidArgument: the bytes are not a PyTorch state of this platform (``field`` names
            the argument they came from: ``resume`` or ``warm_start``).
    """
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise InvalidArgument(
            f"{field} is not a readable PyTorch training state: {exc}", details={"field": field}
        ) from None
    if not isinstance(state, dict) or state.get("format") != TORCH_FORMAT:
        raise InvalidArgument(f"{field} is not a PyTorch training state", details={"field": field})
    return state


def save_npz(arrays: dict[str, Any]) -> bytes:
    """Serialise plain arrays (no objects) as an ``.npz``."""
    buffer = io.BytesIO()
    named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
    named["format"] = np.asarray(SKLEARN_FORMAT)
    np.savez(buffer, **named)
    return buffer.getvalue()


def load_npz(data: bytes, *, field: str) -> dict[str, np.ndarray[Any, Any]]:
    """Read bytes of :func:`save_npz` without unpickling anything."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise InvalidArgument(
            f"{field} is not a readable scikit-learn state: {exc}", details={"field": field}
        ) from None
    if str(arrays.get("format", "")) != SKLEARN_FORMAT:
        raise InvalidArgument(f"{field} is not a scikit-learn training state", details={"field": field})
    return arrays


def state_format(data: bytes) -> str:
    """``TORCH_FORMAT``, ``SKLEARN_FORMAT`` or "" for bytes that are neither (both are zips)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return ""
    if "format.npy" in names:
        return SKLEARN_FORMAT
    if any(name.endswith("data.pkl") for name in names):
        return TORCH_FORMAT
    return ""


def capture_rng() -> dict[str, torch.Tensor]:
    """The torch, numpy and Python global generator states, as tensors."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_meta": torch.tensor([pos, has_gauss], dtype=torch.int64),
        "numpy_cached": torch.tensor([cached], dtype=torch.float64),
        "python": torch.tensor(list(py_state), dtype=torch.int64),
        "python_meta": torch.tensor(
            [version, 0 if gauss is None else 1, 0.0 if gauss is None else gauss], dtype=torch.float64
        ),
    }


def restore_rng(state: dict[str, torch.Tensor]) -> None:
    """Put back what :func:`capture_rng` took."""
    torch.set_rng_state(state["torch"])
    pos, has_gauss = (int(v) for v in state["numpy_meta"].tolist())
    np.random.set_state(
        (
            "MT19937",
            state["numpy_keys"].numpy().astype(np.uint32),
            pos,
            has_gauss,
            float(state["numpy_cached"][0]),
        )
    )
    version, has_gauss_py, gauss = state["python_meta"].tolist()
    random.setstate(
        (int(version), tuple(int(v) for v in state["python"].tolist()), gauss if has_gauss_py else None)
    )
