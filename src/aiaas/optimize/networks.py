"""Pruning and shrinking the PyTorch families' networks (mlp, cnn) of :mod:`aiaas.training`.

Structured pruning removes whole hidden neurons and conv channels: the result is a *smaller
network of the same family* (``hidden_sizes`` and ``channels`` shrunk), built anew and given
the kept weights, so its ONNX export is really smaller and faster, not a sparse copy of the
same shapes. A neuron's importance is the norm of its incoming weights times the norm of its
outgoing weights (a neuron that reads strongly but is never listened to matters little); a
channel's, the L1 norm of its filter times the norm of the weights reading it.

Unstructured pruning zeroes the smallest weights of every layer. The shapes stay, so the ONNX
file and its speed stay too (dense kernels multiply zeros as fast as other numbers): it is
offered for completeness and for compressed storage, and the report says so in its figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from aiaas.training import Network, build_network

__all__ = ["count_parameters", "outputs", "prune_structured", "prune_unstructured", "student_params"]


def count_parameters(network: nn.Module) -> int:
    """Trainable parameters (weights and biases; the standardisation buffers are not counted)."""
    return int(sum(p.numel() for p in network.parameters()))


def _layers(network: Network) -> tuple[list[nn.Conv2d], list[nn.Linear]]:
    convs = [m for m in network.convs if isinstance(m, nn.Conv2d)]
    linears = [m for m in network.head if isinstance(m, nn.Linear)]
    return convs, linears


def _top(scores: torch.Tensor, fraction_kept: float) -> torch.Tensor:
    k = max(1, round(len(scores) * fraction_kept))
    return torch.sort(torch.topk(scores, k).indices).values


@torch.no_grad()
def prune_structured(
    network: Network,
    params: dict[str, Any],
    sparsity: float,
    *,
    family: str,
    n_features: int,
    n_outputs: int,
    image_shape: tuple[int, ...] | None,
) -> tuple[Network, dict[str, Any]]:
    """A new network with ``sparsity`` of each hidden layer's neurons and each conv layer's
    channels removed (at least one kept), carrying the kept weights; and its parameters.

    The output layer keeps all its outputs (one per class), and the input all its features.
    """
    convs, linears = _layers(network)
    keep = 1.0 - sparsity
    conv_keep: list[torch.Tensor] = []
    for i, conv in enumerate(convs):
        reads = convs[i + 1].weight if i + 1 < len(convs) else None
        outgoing = reads.abs().sum(dim=(0, 2, 3)) if reads is not None else torch.ones(conv.out_channels)
        conv_keep.append(_top(conv.weight.abs().sum(dim=(1, 2, 3)) * (outgoing + 1e-12), keep))
    linear_keep: list[torch.Tensor] = []
    for i, linear in enumerate(linears[:-1]):
        outgoing = linears[i + 1].weight.norm(dim=0)
        linear_keep.append(_top(linear.weight.norm(dim=1) * (outgoing + 1e-12), keep))
    new_params = {**params, "hidden_sizes": [len(k) for k in linear_keep]}
    if family == "cnn":
        new_params["channels"] = [len(k) for k in conv_keep]
    pruned = build_network(family, new_params, n_features, n_outputs, image_shape)
    new_convs, new_linears = _layers(pruned)
    for name in ("x_mean", "x_scale", "y_mean", "y_scale"):
        getattr(pruned, name).copy_(getattr(network, name))
    previous: torch.Tensor | None = None
    for conv, new_conv, kept in zip(convs, new_convs, conv_keep, strict=True):
        filters = conv.weight[kept]
        new_conv.weight.copy_(filters if previous is None else filters[:, previous])
        if conv.bias is not None and new_conv.bias is not None:
            new_conv.bias.copy_(conv.bias[kept])
        previous = kept
    columns: torch.Tensor | None = None
    if previous is not None:  # the head reads the last conv's channels, each h*w values, in order
        spatial = int(linears[0].in_features // convs[-1].out_channels)
        columns = (previous[:, None] * spatial + torch.arange(spatial)[None, :]).reshape(-1)
    for i, (old, new) in enumerate(zip(linears, new_linears, strict=True)):
        rows = linear_keep[i] if i < len(linear_keep) else torch.arange(old.out_features)
        weight = old.weight[rows]
        new.weight.copy_(weight if columns is None else weight[:, columns])
        new.bias.copy_(old.bias[rows])
        columns = rows
    return pruned, new_params


@torch.no_grad()
def prune_unstructured(network: Network, sparsity: float) -> float:
    """Zero the ``sparsity`` smallest-magnitude weights of every conv and linear layer, in place;
    returns the fraction of those layers' weights that are zero afterwards."""
    convs, linears = _layers(network)
    zeros = total = 0
    layers: list[nn.Conv2d | nn.Linear] = [*convs, *linears]
    for layer in layers:
        weight: torch.Tensor = layer.weight
        k = int(weight.numel() * sparsity)
        if k > 0:
            threshold = weight.abs().flatten().kthvalue(k).values
            weight[weight.abs() <= threshold] = 0.0
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / max(total, 1)


def student_params(
    teacher: dict[str, Any],
    *,
    family: str,
    width_factor: float,
    hidden_sizes: list[int] | None,
    channels: list[int] | None,
) -> dict[str, Any]:
    """The student's hyper-parameters: the teacher's, with the widths given or scaled down."""

    def scaled(widths: list[int]) -> list[int]:
        return [max(1, round(w * width_factor)) for w in widths]

    params = {
        **teacher,
        "hidden_sizes": hidden_sizes if hidden_sizes is not None else scaled(teacher["hidden_sizes"]),
    }
    if family == "cnn":
        params["channels"] = channels if channels is not None else scaled(teacher["channels"])
    return params


@torch.no_grad()
def outputs(network: Network, x: np.ndarray[Any, Any], batch: int = 4096) -> np.ndarray[Any, Any]:
    """The network's raw outputs (logits, or the standardised prediction) on rows ``x``."""
    network.eval()
    parts = [
        network(torch.from_numpy(np.ascontiguousarray(x[i : i + batch], dtype=np.float32)))
        for i in range(0, len(x), batch)
    ]
    return torch.cat(parts).numpy()
