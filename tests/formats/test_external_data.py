"""A model never reads a file outside its own stored bytes: ONNX external data is refused at
registration, and a model that names a file anyway finds nothing when it loads."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.formats import (
    ModelPackage,
    OnnxModel,
    Signature,
    TensorSpec,
    isolated_folder,
    package_model,
    parse_onnx,
)
from tests._external_data import SIZE, file_readers

SECRET = b"server-secret:" + bytes(range(48, 48 + SIZE))
CASES = sorted(file_readers("secret.txt"))


@pytest.fixture
def server_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding a file a model must not reach, as a server's would."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _reads_the_secret(data: bytes) -> bool:
    """Whether plain ONNX Runtime, loading the bytes here, answers with the file's bytes."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.zeros(SIZE, np.uint8)})[0]
    return bytes(out) == SECRET[:SIZE]


@pytest.mark.parametrize("case", CASES)
def test_the_models_really_read_the_file_with_plain_onnx_runtime(server_folder: Path, case: str) -> None:
    """The threat is real: loaded from bytes, ONNX Runtime reads from the working directory."""
    data, _ = file_readers("secret.txt")[case]
    assert _reads_the_secret(data)


@pytest.mark.parametrize("case", CASES)
def test_registration_refuses_a_tensor_stored_in_an_external_file(server_folder: Path, case: str) -> None:
    data, tensor = file_readers("secret.txt")[case]
    with pytest.raises(
        InvalidArgument, match=rf"ONNX tensor '{tensor}' .* external file 'secret.txt'"
    ) as info:
        package_model(data)
    assert info.value.details == {"field": "file", "tensor": tensor, "location": "secret.txt"}
    with pytest.raises(InvalidArgument, match="self-contained"):
        parse_onnx(data)


def test_a_missing_external_file_is_refused_the_same_way(server_folder: Path) -> None:
    """No answer tells whether a file exists on the server: the checker never looks it up."""
    present, _ = file_readers("secret.txt")["initializer"]
    absent, _ = file_readers("no-such-file")["initializer"]
    with pytest.raises(InvalidArgument) as a:
        package_model(present)
    with pytest.raises(InvalidArgument) as b:
        package_model(absent)
    assert a.value.message.replace("secret.txt", "X") == b.value.message.replace("no-such-file", "X")


@pytest.mark.parametrize("case", CASES)
def test_a_model_that_names_a_file_cannot_read_it_when_loaded(server_folder: Path, case: str) -> None:
    """Defence in depth, for a version stored before registration refused it: the session
    resolves external data against an empty private folder, not the working directory."""
    data, _ = file_readers("secret.txt")[case]
    try:
        model = OnnxModel(data)
    except InvalidArgument:
        return
    out = model.run({"x": np.zeros(SIZE, np.uint8)})["y"]  # pragma: no cover - the failure shown
    pytest.fail(f"the model loaded and answered {bytes(out)!r}")


def test_a_package_built_by_hand_is_checked_too(server_folder: Path) -> None:
    """Registry.register_version takes packages made in-process (the training service's)."""
    data, _ = file_readers("secret.txt")["constant attribute"]
    spec = (TensorSpec("x", "UINT8", (SIZE,)),)
    package = ModelPackage(onnx=data, flavor="onnx", signature=Signature(inputs=spec, outputs=()))
    with pytest.raises(InvalidArgument, match="ONNX tensor 'W'"):
        package.check()


def test_the_isolated_folder_is_private_and_empty() -> None:
    folder = isolated_folder()
    assert folder == isolated_folder()
    assert os.listdir(folder) == []
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert Path(folder).resolve() != Path.cwd().resolve()


def test_an_onnx_file_with_its_data_beside_it_is_registered_self_contained(tmp_path: Path) -> None:
    """What a user has on their own disk (a large model saved with external data) is embedded
    by the SDK/CLI, which read the files beside the model on the user's machine."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.arange(4 * 3, dtype=np.float32).reshape(4, 3)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "model.onnx"
    onnx.save_model(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").is_file()
    assert any(
        t.data_location == TensorProto.EXTERNAL
        for t in onnx.load(path, load_external_data=False).graph.initializer
    )

    package = package_model(path, np.ones((2, 4), np.float32))
    embedded = parse_onnx(package.onnx)
    assert all(t.data_location == TensorProto.DEFAULT for t in embedded.graph.initializer)
    x: Any = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(OnnxModel(package.onnx).run({"x": x})["y"], x @ weights)

    (tmp_path / "weights.bin").unlink()
    with pytest.raises(InvalidArgument, match="cannot embed the external data"):
        package_model(path)
