"""The one ONNX Runtime session factory: the options every session of the platform gets."""

from __future__ import annotations

import onnxruntime as ort

from aiaas.formats import ModelPackage, OnnxModel, isolated_folder, new_session
from aiaas.formats.onnx_session import EXTERNAL_DATA_FOLDER_OPTION, execution_providers


def _entry(session: ort.InferenceSession, key: str) -> str:
    return str(session.get_session_options().get_session_config_entry(key))


def test_a_replica_session_does_not_spin_and_reads_external_data_only_from_its_folder(
    iris_package: ModelPackage,
) -> None:
    folder = isolated_folder()
    session = new_session(iris_package.onnx, external_data_folder=folder, intra_op_threads=2, spinning=False)
    options = session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert _entry(session, "session.intra_op.allow_spinning") == "0"
    assert _entry(session, EXTERNAL_DATA_FOLDER_OPTION) == folder


def test_the_in_process_model_uses_the_factory_with_its_isolated_folder(iris_package: ModelPackage) -> None:
    session = OnnxModel(iris_package.onnx, intra_op_threads=3).session
    assert session.get_session_options().intra_op_num_threads == 3
    assert _entry(session, EXTERNAL_DATA_FOLDER_OPTION) == isolated_folder()


def test_sessions_run_on_cuda_only_when_the_installed_runtime_has_it(iris_package: ModelPackage) -> None:
    session = new_session(iris_package.onnx, external_data_folder=isolated_folder())
    available = ort.get_available_providers()
    expected = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if "CUDAExecutionProvider" in available
        else ["CPUExecutionProvider"]
    )
    assert execution_providers() == expected
    assert session.get_providers() == expected
