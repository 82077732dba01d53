"""The reference models of the serving benchmarks, rebuilt deterministically as ONNX.

``tabular`` and ``mlp`` are the two models of the peer benchmarks: their seeds, export
options and payload rows are those the peer anchors in ``peers.py`` were measured with, so
this run's figures can be set beside them. The logic is copied here (rather than imported
from the peer harness) so the benchmark runs from this repository alone. ``mlp_wide`` is
the compute-bound model of the dynamic-batching scenario; it has no peer anchor.

* ``tabular``: ``StandardScaler + LogisticRegression(max_iter=1000)`` on scikit-learn's
  bundled breast-cancer set (30 float32 features); skl2onnx, opset 17, ``zipmap=False``, so
  the graph has a ``label`` and a ``probabilities`` output.
* ``mlp``: torch ``Linear 784→1024→ReLU→1024→ReLU→10`` with ``torch.manual_seed(0)``;
  TorchScript exporter, opset 17, dynamic batch axis; one ``logits`` output.
* ``mlp_wide``: the same recipe at ``784→4096→ReLU→4096→ReLU→10`` (about 20 M weights, 80 MB
  of float32). One row costs ~40 MFLOP and reads every weight once, so a lone row is bound
  by memory bandwidth while a batch reuses each weight it loads: the case dynamic batching
  is for.

Each model is checked against the native one before it is used, so a broken export fails
here rather than showing up as a fast but wrong server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BATCHING_MODEL", "MODEL_NAMES", "PEER_MODELS", "ReferenceModel", "build"]

#: The models the peer anchors were measured with: the server-against-server comparison.
PEER_MODELS = ("tabular", "mlp")
#: The compute-bound model of the batching scenario.
BATCHING_MODEL = "mlp_wide"
MODEL_NAMES = (*PEER_MODELS, BATCHING_MODEL)

#: Payload values are rounded like the peer harness's payload files, so the bytes on the
#: wire (and the JSON parsing work) match the anchors.
_PAYLOAD_DECIMALS = 4


@dataclass(frozen=True)
class ReferenceModel:
    """One exported reference model and the single row every request sends."""

    name: str
    onnx_path: Path
    input_name: str
    #: The first graph output: what the baseline returns, so aiaas is asked for it alone.
    output_name: str
    row: list[float]


def build(out_dir: Path, names: tuple[str, ...] = MODEL_NAMES) -> dict[str, ReferenceModel]:
    """Export the named reference models into ``out_dir`` and check them.

    Args:
        out_dir: folder for the ``<name>.onnx`` files (created if missing).
        names: which models to build, a subset of :data:`MODEL_NAMES`.

    Returns:
        model name → the exported model and its request row.

    Raises:
        ValueError: an unknown model name.
        AssertionError: an ONNX export disagrees with its native model.
    """
    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown:
        raise ValueError(f"unknown reference model(s) {unknown}; choose from {list(MODEL_NAMES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    builders = {"tabular": _build_tabular, "mlp": _build_mlp, "mlp_wide": _build_mlp_wide}
    return {name: builders[name](out_dir) for name in names}


def _build_tabular(out_dir: Path) -> ReferenceModel:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x, y)
    proto = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, 30]))],
        options={id(model.steps[-1][1]): {"zipmap": False}},
        target_opset=17,
    )
    path = out_dir / "tabular.onnx"
    path.write_bytes(proto.SerializeToString())
    labels = _run_onnx(path, "input", x)
    assert (labels == model.predict(x)).all(), "tabular ONNX labels differ from scikit-learn's"
    return ReferenceModel("tabular", path, "input", "label", _row(x[0]))


def _build_mlp(out_dir: Path) -> ReferenceModel:
    return _build_torch_mlp(out_dir, "mlp", hidden=1024)


def _build_mlp_wide(out_dir: Path) -> ReferenceModel:
    return _build_torch_mlp(out_dir, "mlp_wide", hidden=4096)


def _build_torch_mlp(out_dir: Path, name: str, hidden: int) -> ReferenceModel:
    """``Linear 784→hidden→ReLU→hidden→ReLU→10``, seeded, exported with a dynamic batch axis."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )
    net.eval()
    x = np.random.default_rng(0).random((32, 784), dtype=np.float32).round(_PAYLOAD_DECIMALS)
    path = out_dir / f"{name}.onnx"
    torch.onnx.export(
        net,
        (torch.from_numpy(x[:1]),),
        str(path),
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = _run_onnx(path, "input", x)
    assert np.allclose(got, expected, atol=1e-4), f"{name} ONNX logits differ from torch's"
    return ReferenceModel(name, path, "input", "logits", _row(x[0]))


def _run_onnx(path: Path, input_name: str, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {input_name: x})[0])


def _row(values: np.ndarray[Any, Any]) -> list[float]:
    return [round(float(v), _PAYLOAD_DECIMALS) for v in values]
