"""The PyTorch families: an MLP and a small CNN, and the wrapper that exports them.

Both take the flat feature rows the platform serves (the CNN reshapes to ``image_shape``
inside the module), standardise them with buffers computed from the training split, and
output raw scores: logits for classification, the standardised target for regression.
Standardisation lives in the module so the exported ONNX takes raw features, and the
optimiser sees well-scaled inputs whatever the dataset's units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from aiaas.errors import InvalidArgument

__all__ = ["Exported", "Network", "build_network"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class Network(nn.Module):
    """Standardise → body (MLP layers, or conv layers then MLP layers) → one linear output."""

    x_mean: torch.Tensor
    x_scale: torch.Tensor
    y_mean: torch.Tensor
    y_scale: torch.Tensor

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        *,
        hidden_sizes: list[int],
        dropout: float,
        activation: str,
        image_shape: tuple[int, ...] | None = None,
        channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("x_mean", torch.zeros(n_features))
        self.register_buffer("x_scale", torch.ones(n_features))
        # Regression targets are learnt standardised; these map predictions back.
        self.register_buffer("y_mean", torch.zeros(1))
        self.register_buffer("y_scale", torch.ones(1))
        act = _ACTIVATIONS[activation]
        self.image_shape = image_shape
        convs: list[nn.Module] = []
        width = n_features
        if channels is not None:
            if image_shape is None or len(image_shape) != 3:
                raise InvalidArgument(
                    "model.family 'cnn' needs image-shaped data (channels, height, width); "
                    "this dataset has no image_shape",
                    details={"field": "model.family"},
                )
            c, h, w = image_shape
            for out in channels:
                convs += [nn.Conv2d(c, out, kernel_size=3, padding=1), act()]
                if h >= 4 and w >= 4:
                    convs.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
                c = out
            width = c * h * w
        self.convs = nn.Sequential(*convs)
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), act()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.head = nn.Sequential(*layers)

    def set_scaling(self, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any] | None) -> None:
        """Standardise with the training split's statistics (constant columns are left as is)."""
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
        std[std < 1e-12] = 1.0
        self.x_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.x_scale.copy_(torch.from_numpy(std.astype(np.float32)))
        if y is not None:
            y_std = float(y.std(dtype=np.float64)) or 1.0
            self.y_mean.fill_(float(y.mean(dtype=np.float64)))
            self.y_scale.fill_(y_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.x_mean) / self.x_scale
        if self.image_shape is not None and len(self.convs) > 0:
            z = self.convs(z.reshape(-1, *self.image_shape)).flatten(1)
        out: torch.Tensor = self.head(z)
        return out


class Exported(nn.Module):
    """What is exported: class probabilities and the class index, or the prediction in target units.

    Output names follow the scikit-learn packages (``label`` + ``probabilities``, or
    ``variable``), so a client reads a trained MLP the way it reads a random forest. The
    index becomes the class label in the ONNX graph (:meth:`ModelPackage.with_classes`),
    where labels of any kind (text included) can be held, which a torch buffer cannot.
    """

    def __init__(self, network: Network, classification: bool) -> None:
        super().__init__()
        self.network = network
        self.classification = classification

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network(x)
        if self.classification:
            probabilities = torch.softmax(out, dim=1)
            return out.argmax(dim=1), probabilities
        return (out * self.network.y_scale + self.network.y_mean,)


def build_network(
    family: str, params: dict[str, Any], n_features: int, n_outputs: int, image_shape: tuple[int, ...] | None
) -> Network:
    """The module for a family and its effective hyper-parameters."""
    return Network(
        n_features,
        n_outputs,
        hidden_sizes=list(params["hidden_sizes"]),
        dropout=float(params["dropout"]),
        activation=str(params["activation"]),
        image_shape=image_shape if family == "cnn" else None,
        channels=list(params["channels"]) if family == "cnn" else None,
    )
