"""ONNX external data: refused at registration, and made unreachable when a model loads.

An ONNX tensor may keep its bytes in another file (``data_location: EXTERNAL`` and a
``location`` relative to the model). ONNX Runtime reads that file when the session is
built; for a model loaded from bytes it resolves the location against the process's
working directory. A version registered with ``location: "README.md"`` would therefore
answer with the server's own files. Every version here is one self-contained ONNX file
stored by digest, so no tensor of it may name another file:

- at registration, :func:`check_self_contained` walks *every* tensor ONNX Runtime could
  load (initializers and sparse initializers of the graph and of every subgraph of
  ``If``/``Loop``/``Scan``, tensors held in node attributes such as ``Constant``'s
  ``value``/``sparse_value``, the bodies of model-local functions, training graphs) and
  refuses the first one stored outside, naming it; this runs before the ONNX checker,
  which would otherwise look the file up on the server's disk;
- at load, every session (in this process or in a replica) resolves external data
  against :func:`isolated_folder`, a private empty directory, so a model that got past
  registration (stored by an older release, say) fails to load instead of reading a file.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiaas.errors import InvalidArgument
from aiaas.formats.onnx_session import EXTERNAL_DATA_FOLDER_OPTION

if TYPE_CHECKING:
    import onnx

__all__ = ["EXTERNAL_DATA_FOLDER_OPTION", "check_self_contained", "external_tensors", "isolated_folder"]


# TensorProto.DataLocation.EXTERNAL (fixed by the ONNX spec)
_EXTERNAL = 1


def external_tensors(proto: onnx.ModelProto) -> Iterator[tuple[str, str, str]]:
    """Every tensor of the model that keeps its data outside it: ``(tensor, where, location)``."""
    yield from _graph(proto.graph, f"graph {proto.graph.name!r}")
    for function in proto.functions:
        where = f"function {function.domain}.{function.name}"
        for node in function.node:
            yield from _node(node, where)
    for i, info in enumerate(proto.training_info):
        yield from _graph(info.initialization, f"training_info[{i}].initialization")
        yield from _graph(info.algorithm, f"training_info[{i}].algorithm")


def check_self_contained(proto: onnx.ModelProto) -> None:
    """Refuse a model with any tensor stored in an external file.

    Raises:
        InvalidArgument: naming the first such tensor, where it sits and the file it names.
    """
    for tensor, where, location in external_tensors(proto):
        raise InvalidArgument(
            f"ONNX tensor {tensor!r} ({where}) keeps its data in an external file {location!r}; a "
            "version is one self-contained ONNX file and may read no other file. Embed the data "
            "(onnx.save_model(onnx.load(path), path, save_as_external_data=False)), or register "
            "the .onnx file by its path with the SDK or CLI, which embed the data beside it",
            details={"field": "file", "tensor": tensor, "location": location},
        )


def _graph(graph: onnx.GraphProto, where: str) -> Iterator[tuple[str, str, str]]:
    for tensor in graph.initializer:
        yield from _tensor(tensor, f"initializer of {where}")
    for sparse in graph.sparse_initializer:
        yield from _sparse(sparse, f"sparse initializer of {where}")
    for node in graph.node:
        yield from _node(node, where)


def _node(node: onnx.NodeProto, where: str) -> Iterator[tuple[str, str, str]]:
    label = f"attribute {{}} of node {node.name or node.op_type!r} in {where}"
    for attribute in node.attribute:
        here = label.format(repr(attribute.name))
        if attribute.HasField("t"):
            yield from _tensor(attribute.t, here)
        for tensor in attribute.tensors:
            yield from _tensor(tensor, here)
        if attribute.HasField("sparse_tensor"):
            yield from _sparse(attribute.sparse_tensor, here)
        for sparse in attribute.sparse_tensors:
            yield from _sparse(sparse, here)
        if attribute.HasField("g"):
            yield from _graph(attribute.g, f"subgraph {attribute.g.name!r} of {here}")
        for graph in attribute.graphs:
            yield from _graph(graph, f"subgraph {graph.name!r} of {here}")


def _sparse(sparse: onnx.SparseTensorProto, where: str) -> Iterator[tuple[str, str, str]]:
    yield from _tensor(sparse.values, where)
    yield from _tensor(sparse.indices, where)


def _tensor(tensor: onnx.TensorProto, where: str) -> Iterator[tuple[str, str, str]]:
    # Either field is enough to refuse: ONNX Runtime reads ``data_location``, and a tensor
    # that lists external data but says DEFAULT is malformed anyway.
    if tensor.data_location == _EXTERNAL or len(tensor.external_data):
        entries = {e.key: e.value for e in tensor.external_data}
        yield tensor.name, where, entries.get("location", "")


_folder_lock = threading.Lock()
_folder: str | None = None


def isolated_folder() -> str:
    """A private (mode 0700), empty directory of this process, made on first use.

    ONNX Runtime sessions resolve external data against it, and replica processes run in
    it: whatever relative path a model names, there is nothing to read. It is made again if
    something (a temp cleaner) removed it, and removed when the process exits.
    """
    global _folder
    with _folder_lock:
        if _folder is None or not os.path.isdir(_folder):
            _folder = tempfile.mkdtemp(prefix="aiaas-onnx-")
            atexit.register(shutil.rmtree, _folder, ignore_errors=True)
        return _folder
