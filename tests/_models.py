"""Small real models trained in the test process on scikit-learn's bundled datasets."""

from __future__ import annotations

from typing import Any

import numpy as np


def iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


def iris_classifier(C: float = 1.0) -> Any:
    """A scaled logistic regression on iris; ``C`` changes it enough to tell versions apart."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris()
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(X, y)


def torch_mlp(inputs: int = 4, hidden: int = 32, outputs: int = 3, seed: int = 0) -> Any:
    """A PyTorch MLP trained for a few steps on iris, in eval mode."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(inputs, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, outputs),
        torch.nn.Softmax(dim=1),
    )
    X, y = iris()
    x, target = torch.from_numpy(X[:, :inputs]), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(torch.log(model(x) + 1e-9), target)
        loss.backward()
        optimizer.step()
    return model.eval()


def torch_outputs(model: Any, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import torch

    with torch.no_grad():
        return np.asarray(model(torch.from_numpy(x)).numpy())
