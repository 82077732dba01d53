from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from aiaas.errors import InvalidArgument
from aiaas.training.checkpoint import (
    SKLEARN_FORMAT,
    TORCH_FORMAT,
    capture_rng,
    load_npz,
    load_torch_state,
    restore_rng,
    save_npz,
    save_torch_state,
    state_format,
)


def test_rng_states_round_trip_through_a_checkpoint() -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    random.gauss(0, 1)
    saved = load_torch_state(save_torch_state({"rng": capture_rng()}), field="resume")["rng"]
    expected = (torch.rand(3), np.random.standard_normal(3), random.gauss(0, 1), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    restore_rng(saved)
    again = (torch.rand(3), np.random.standard_normal(3), random.gauss(0, 1), random.random())
    assert torch.equal(expected[0], again[0])
    np.testing.assert_array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


def test_formats_are_told_apart() -> None:
    assert state_format(save_torch_state({"x": torch.ones(2)})) == TORCH_FORMAT
    assert state_format(save_npz({"coef": np.ones((2, 2))})) == SKLEARN_FORMAT
    assert state_format(b"not a zip") == ""


def test_npz_with_objects_is_refused() -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, format=np.asarray(SKLEARN_FORMAT), evil=np.asarray([{"a": 1}], dtype=object))
    with pytest.raises(InvalidArgument, match="warm_start"):
        load_npz(buffer.getvalue(), field="warm_start")


def test_torch_bytes_of_another_program_are_refused() -> None:
    import io

    buffer = io.BytesIO()
    torch.save({"weights": torch.ones(1)}, buffer)
    with pytest.raises(InvalidArgument, match="resume is not a PyTorch training state"):
        load_torch_state(buffer.getvalue(), field="resume")
