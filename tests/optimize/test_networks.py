"""Structured pruning removes the least important neurons and channels and keeps the rest's
weights exactly; unstructured pruning zeroes weights; a student is narrower."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from aiaas.optimize.networks import (
    count_parameters,
    outputs,
    prune_structured,
    prune_unstructured,
    student_params,
)
from aiaas.training import build_network


def _dead_half(family: str) -> tuple[torch.nn.Module, dict]:
    """A network whose odd hidden neurons (and odd channels) carry nothing: pruning half of each
    layer must remove exactly those, and the output must not change."""
    params = {"hidden_sizes": [8, 6], "dropout": 0.0, "activation": "relu"}
    if family == "cnn":
        params["channels"] = [4, 6]
    torch.manual_seed(0)
    net = build_network(family, params, 64, 3, (1, 8, 8))
    with torch.no_grad():
        convs = [m for m in net.convs if isinstance(m, torch.nn.Conv2d)]
        linears = [m for m in net.head if isinstance(m, torch.nn.Linear)]
        for conv in convs:
            conv.weight[1::2] *= 1e-3  # weak filters ...
            conv.bias[1::2] = 0.0
        for following in convs[1:]:
            following.weight[:, 1::2] = 0.0  # ... that nobody reads
        if convs:
            spatial = linears[0].in_features // convs[-1].out_channels
            weight = linears[0].weight.view(linears[0].out_features, convs[-1].out_channels, spatial)
            weight[:, 1::2] = 0.0
        for layer, following in itertools.pairwise(linears):
            layer.weight[1::2] *= 1e-3
            following.weight[:, 1::2] = 0.0
    return net.eval(), params


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_structured_pruning_keeps_the_live_neurons_and_channels(family: str) -> None:
    net, params = _dead_half(family)
    pruned, new_params = prune_structured(
        net, params, 0.5, family=family, n_features=64, n_outputs=3, image_shape=(1, 8, 8)
    )
    assert new_params["hidden_sizes"] == [4, 3]
    if family == "cnn":
        assert new_params["channels"] == [2, 3]
    assert count_parameters(pruned) < count_parameters(net) / 2
    x = np.random.default_rng(1).normal(size=(16, 64)).astype(np.float32)
    np.testing.assert_allclose(outputs(pruned, x), outputs(net, x), rtol=1e-4, atol=1e-4)


def test_unstructured_pruning_zeroes_the_smallest_weights() -> None:
    torch.manual_seed(0)
    net = build_network("mlp", {"hidden_sizes": [32], "dropout": 0.0, "activation": "relu"}, 10, 2, None)
    largest = max(float(m.weight.detach().abs().max()) for m in net.head if isinstance(m, torch.nn.Linear))
    zero = prune_unstructured(net, 0.7)
    assert 0.69 <= zero <= 0.72
    weights = torch.cat([m.weight.detach().flatten() for m in net.head if isinstance(m, torch.nn.Linear)])
    assert float(weights.abs().max()) == largest  # the largest survive


def test_student_widths_scale_or_are_given() -> None:
    teacher = {"hidden_sizes": [64, 32], "channels": [16, 32], "dropout": 0.0, "activation": "relu"}
    assert student_params(teacher, family="cnn", width_factor=0.25, hidden_sizes=None, channels=None) == {
        **teacher,
        "hidden_sizes": [16, 8],
        "channels": [4, 8],
    }
    given = student_params(teacher, family="mlp", width_factor=0.5, hidden_sizes=[7], channels=None)
    assert given["hidden_sizes"] == [7]
