"""The one place ONNX Runtime sessions are made: their options, decided once.

Every session the platform builds comes from :func:`new_session`: a model served in this
process (:class:`~aiaas.formats.OnnxModel`, also what registration, comparison, drift
references and explanations load), a model served by a replica process
(``aiaas/serving/replica_process.py``) and the models an optimization report measures.
The options, and why:

- **Threads**: ``intra_op_threads`` per session (the caller's: 1 in this process, one per
  replica core in a replica; 0 is ONNX Runtime's default, one per core) and one
  inter-op thread: the graphs served here are small, and parallelism comes from serving
  several requests, batches or replicas at once, not from running graph branches at once.
- **Graph optimisation**: ``ORT_ENABLE_ALL`` (constant folding, node fusions, layout
  changes), paid once at load, never per request.
- **Spinning**: idle intra-op threads spin by default, which a single in-process session
  can afford; a replica turns it off (``spinning=False``), since several replicas per
  node would burn a core each waiting for work.
- **External data**: resolves against ``external_data_folder``, an empty private folder
  (:func:`aiaas.formats.isolated_folder`, or the replica's working directory, which the
  front made that folder): whatever file a model names, there is nothing there to read
  (see :mod:`aiaas.formats.external_data`).
- **Execution providers**: CUDA first when the installed ONNX Runtime has it (the
  ``onnxruntime-gpu`` build), then the CPU; with the CPU build (the one the lock file
  pins) sessions run on the CPU exactly as before.

This module imports the standard library alone (ONNX Runtime when a session is made):
a replica process loads it by path, without the ``aiaas`` package, to start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["EXTERNAL_DATA_FOLDER_OPTION", "execution_providers", "new_session"]

#: ONNX Runtime's session option giving the folder that external data of a model loaded
#: from bytes is resolved against (``kOrtSessionOptionsModelExternalInitializersFileFolderPath``).
EXTERNAL_DATA_FOLDER_OPTION = "session.model_external_initializers_file_folder_path"

_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


def execution_providers() -> list[str]:
    """The providers sessions run on, in order of preference: CUDA when present, then the CPU."""
    import onnxruntime as ort

    return [_CUDA, _CPU] if _CUDA in ort.get_available_providers() else [_CPU]


def new_session(
    model: bytes,
    *,
    external_data_folder: str,
    intra_op_threads: int = 1,
    spinning: bool = True,
    log_severity_level: int | None = None,
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session for ``model`` with the platform's options (module docstring).

    Args:
        model: the ONNX file's bytes.
        external_data_folder: where external data would be resolved; give an empty
            private folder (:func:`aiaas.formats.isolated_folder`).
        intra_op_threads: threads one run may use; 0 means ONNX Runtime's default.
        spinning: whether idle intra-op threads spin waiting for work (off in replicas).
        log_severity_level: ONNX Runtime's log level for this session (3: errors only);
            ``None`` keeps its default.

    Raises:
        Exception: what ONNX Runtime raises for a model it cannot load (its own types;
            callers turn it into their error).

    Example:
        >>> session = new_session(onnx_bytes, external_data_folder=isolated_folder())  # doctest: +SKIP
    """
    import onnxruntime as ort  # imported here: a replica pays for it at LOAD, not at spawn

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if log_severity_level is not None:
        options.log_severity_level = log_severity_level
    options.add_session_config_entry(EXTERNAL_DATA_FOLDER_OPTION, external_data_folder)
    return ort.InferenceSession(model, sess_options=options, providers=execution_providers())
