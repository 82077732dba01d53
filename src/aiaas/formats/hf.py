"""Hugging Face model folders: what makes one servable, checked at registration.

Two flavors are served by the PyTorch runtime:

- ``hf-causal-lm``: a causal language model (``*ForCausalLM`` / ``*LMHeadModel``) with its
  tokenizer: completions and chat completions.
- ``hf-embedding``: a sentence-transformers folder (``modules.json``), or a plain encoder
  that gets mean pooling: embeddings.

Everything is checked from the files alone, without loading weights: ``config.json`` names
an architecture that ``transformers`` itself ships (no ``auto_map``: remote code is never
run), weights are ``*.safetensors`` whose headers parse and whose tensors fit in their
files, and a tokenizer is present. The platform's own trained transformers are saved in
this same layout (a GPT-2-style ``config.json``, ``model.safetensors``, ``tokenizer.json``),
so one serving path serves trained and imported models.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import orjson

from aiaas.errors import InvalidArgument
from aiaas.formats.folder import MAX_FOLDER_FILES, FolderPackage, FolderSignature, check_file_name
from aiaas.formats.signature import TensorSpec

__all__ = ["FOLDER_FLAVORS", "HF_CAUSAL_LM", "HF_EMBEDDING", "package_folder"]

HF_CAUSAL_LM = "hf-causal-lm"
HF_EMBEDDING = "hf-embedding"
#: Flavors stored as a folder manifest and served by the PyTorch runtime.
FOLDER_FLAVORS = (HF_CAUSAL_LM, HF_EMBEDDING)

_TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length")
_SAFETENSORS_DTYPES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}  # fmt: skip
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def package_folder(files: Mapping[str, bytes], flavor: str | None = None) -> FolderPackage:
    """Check a Hugging Face model folder and package it for the registry.

    Args:
        files: relative path → bytes (see :func:`~aiaas.formats.read_folder`).
        flavor: ``hf-causal-lm`` or ``hf-embedding``; ``None`` tells them apart (a
            ``modules.json`` means sentence-transformers, a ``*ForCausalLM`` architecture a
            language model).

    Raises:
        InvalidArgument: naming the file or field that makes the folder unservable: no
            ``config.json``, an architecture transformers does not ship, custom code,
            pickle weights, unreadable safetensors, no tokenizer.
    """
    if not files:
        raise InvalidArgument("the model folder is empty", details={"field": "files"})
    if len(files) > MAX_FOLDER_FILES:
        raise InvalidArgument(
            f"a model folder may hold at most {MAX_FOLDER_FILES} files; got {len(files)}",
            details={"field": "files", "value": len(files)},
        )
    for name in files:
        check_file_name(name)
    if flavor is not None and flavor not in FOLDER_FLAVORS:
        raise InvalidArgument(
            f"flavor must be one of {list(FOLDER_FLAVORS)} for a model folder; got {flavor!r}",
            details={"field": "flavor", "value": flavor, "expected": list(FOLDER_FLAVORS)},
        )
    config = _json_object(files, "config.json", required=True)
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise InvalidArgument(
            "config.json has no model_type: it is not a transformers config (save it with save_pretrained)",
            details={"field": "config.json", "value": model_type},
        )
    if "auto_map" in config:
        raise InvalidArgument(
            "config.json has an auto_map: this model needs its own Python code, which is never run "
            "(trust_remote_code stays off); use an architecture transformers ships",
            details={"field": "config.json.auto_map"},
        )
    weights = _check_weights(files)
    tokenizer = [f for f in _TOKENIZER_FILES if f in files]
    if not tokenizer:
        raise InvalidArgument(
            f"the folder has no tokenizer: expected one of {', '.join(_TOKENIZER_FILES)} "
            "(save the tokenizer with save_pretrained into the same folder)",
            details={"field": "files", "expected": list(_TOKENIZER_FILES)},
        )
    architectures = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    flavor = flavor or _detect_flavor(files, architectures)
    parameters: dict[str, Any] = {
        "model_type": model_type,
        "architecture": architectures[0] if architectures else None,
        "context_length": _context_length(config),
        "parameters": weights["parameters"],
        "weights_bytes": weights["bytes"],
        "weights_dtype": weights["dtype"],
    }
    if flavor == HF_CAUSAL_LM:
        _check_causal_lm(model_type, architectures)
        parameters["task"] = "text-generation"
        parameters["chat_template"] = _has_chat_template(files)
        signature = FolderSignature(
            inputs=(TensorSpec("prompt", "BYTES", (-1,)),),
            outputs=(TensorSpec("text", "BYTES", (-1,)),),
            parameters=parameters,
        )
    else:
        _check_encoder(model_type)
        dimension = _embedding_dimension(files, config)
        parameters["task"] = "embedding"
        parameters["dimension"] = dimension
        signature = FolderSignature(
            inputs=(TensorSpec("input", "BYTES", (-1,)),),
            outputs=(TensorSpec("embedding", "FP32", (-1, dimension)),),
            parameters=parameters,
        )
    return FolderPackage(files=dict(files), flavor=flavor, signature=signature)


def _json_object(files: Mapping[str, bytes], name: str, *, required: bool = False) -> dict[str, Any]:
    if name not in files:
        if required:
            raise InvalidArgument(
                f"the folder has no {name}: a Hugging Face model folder starts with its config "
                "(save the model with save_pretrained)",
                details={"field": "files", "expected": name},
            )
        return {}
    try:
        value = orjson.loads(files[name])
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"{name} is not valid JSON: {exc}", details={"field": name}) from None
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"{name} must hold a JSON object; got {type(value).__name__}", details={"field": name}
        )
    return value


def _check_weights(files: Mapping[str, bytes]) -> dict[str, Any]:
    """Every ``*.safetensors`` header parses and its tensors lie inside the file."""
    shards = sorted(n for n in files if n.endswith(".safetensors"))
    if not shards:
        raise InvalidArgument(
            "the folder has no *.safetensors weights (pickle-based .bin/.pt weights are never loaded); "
            "save the model with save_pretrained(..., safe_serialization=True)",
            details={"field": "files", "expected": "*.safetensors"},
        )
    index = _json_object(files, "model.safetensors.index.json")
    wanted = set((index.get("weight_map") or {}).values()) if index else set()
    missing = sorted(w for w in wanted if w not in files)
    if missing:
        raise InvalidArgument(
            f"model.safetensors.index.json names shards that are not in the folder: {missing}",
            details={"field": "files", "expected": missing},
        )
    parameters, size, dtypes = 0, 0, set()
    for name in shards:
        data = files[name]
        header = _safetensors_header(name, data)
        end = 8 + header["__size__"]
        for key, info in header.items():
            if key in ("__metadata__", "__size__"):
                continue
            try:
                dtype, shape, (start, stop) = info["dtype"], info["shape"], info["data_offsets"]
                count = 1
                for d in shape:
                    count *= int(d)
                ok = dtype in _SAFETENSORS_DTYPES and 0 <= start <= stop <= len(data) - end
                ok = ok and stop - start == count * _SAFETENSORS_DTYPES[dtype]
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                raise InvalidArgument(
                    f"{name}: tensor {key!r} is not a valid safetensors entry (dtype, shape and offsets "
                    "must agree and lie inside the file)",
                    details={"field": name, "value": key},
                )
            parameters += count
            size += stop - start
            dtypes.add(dtype)
    return {"parameters": parameters, "bytes": size, "dtype": "/".join(sorted(dtypes))}


def _safetensors_header(name: str, data: bytes) -> dict[str, Any]:
    bad = InvalidArgument(
        f"{name} is not a safetensors file (an 8-byte header size, then a JSON header)",
        details={"field": name},
    )
    if len(data) < 8:
        raise bad
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(len(data) - 8, _MAX_HEADER_BYTES):
        raise bad
    try:
        header = orjson.loads(data[8 : 8 + n])
    except orjson.JSONDecodeError:
        raise bad from None
    if not isinstance(header, dict):
        raise bad
    header["__size__"] = n
    return header


def _detect_flavor(files: Mapping[str, bytes], architectures: list[str]) -> str:
    if "modules.json" in files:
        return HF_EMBEDDING
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return HF_CAUSAL_LM
    raise InvalidArgument(
        f"cannot tell what this model does from config.json (architectures: {architectures}); "
        f"give flavor {HF_CAUSAL_LM!r} for a causal language model or {HF_EMBEDDING!r} for an encoder "
        "that makes sentence embeddings",
        details={"field": "flavor", "expected": list(FOLDER_FLAVORS)},
    )


def _check_causal_lm(model_type: str, architectures: list[str]) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    known = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if model_type not in known:
        raise InvalidArgument(
            f"config.json: model_type {model_type!r} is not a causal language model architecture that "
            "transformers ships; such models are served without running their own code, so only "
            f"transformers' own architectures (e.g. gpt2, llama, qwen2, mistral) are accepted",
            details={"field": "config.json.model_type", "value": model_type},
        )
    classes = set(known.values())
    unknown = [a for a in architectures if a not in classes]
    if unknown:
        raise InvalidArgument(
            f"config.json: architectures {unknown} are not causal language models transformers "
            f"ships (for model_type {model_type!r} it would be {known[model_type]!r})",
            details={"field": "config.json.architectures", "value": unknown},
        )


def _check_encoder(model_type: str) -> None:
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    if model_type not in MODEL_MAPPING_NAMES:
        raise InvalidArgument(
            f"config.json: model_type {model_type!r} is not an architecture transformers ships; "
            "embedding models are served without running their own code",
            details={"field": "config.json.model_type", "value": model_type},
        )


def _context_length(config: Mapping[str, Any]) -> int | None:
    for key in _CONTEXT_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _has_chat_template(files: Mapping[str, bytes]) -> bool:
    if "chat_template.jinja" in files or "chat_template.json" in files:
        return True
    return bool(_json_object(files, "tokenizer_config.json").get("chat_template"))


def _embedding_dimension(files: Mapping[str, bytes], config: Mapping[str, Any]) -> int:
    """The size of the vectors: the last Dense module's, else the pooled hidden size."""
    dimension = config.get("hidden_size") or config.get("d_model") or config.get("dim")
    modules = _modules(files)
    for module in modules:
        kind, path = module["type"], module.get("path") or ""
        module_config = _json_object(files, f"{path}/config.json" if path else "config.json")
        if kind.endswith(".Pooling") and module_config.get("word_embedding_dimension"):
            dimension = module_config["word_embedding_dimension"]
        if kind.endswith(".Dense"):
            activation = module_config.get("activation_function")
            if activation is not None and not str(activation).startswith("torch.nn."):
                raise InvalidArgument(
                    f"{path}/config.json: activation_function {activation!r} is not a torch.nn class; "
                    "no other code is ever imported",
                    details={"field": f"{path}/config.json.activation_function", "value": activation},
                )
            dimension = module_config.get("out_features", dimension)
    if not isinstance(dimension, int) or dimension < 1:
        raise InvalidArgument(
            "cannot tell the embedding size: config.json has no hidden_size and no Pooling/Dense module "
            "says it",
            details={"field": "config.json.hidden_size", "value": dimension},
        )
    return dimension


def _modules(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """The sentence-transformers modules, each of a class sentence-transformers ships."""
    if "modules.json" not in files:
        return []
    try:
        modules = orjson.loads(files["modules.json"])
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(
            f"modules.json is not valid JSON: {exc}", details={"field": "modules.json"}
        ) from None
    if not isinstance(modules, list) or not all(
        isinstance(m, dict) and isinstance(m.get("type"), str) for m in modules
    ):
        raise InvalidArgument(
            'modules.json must be a list of {"type": ..., "path": ...} objects',
            details={"field": "modules.json"},
        )
    for i, module in enumerate(modules):
        if not module["type"].startswith("sentence_transformers."):
            raise InvalidArgument(
                f"modules.json[{i}].type {module['type']!r} is not a sentence-transformers module; "
                "custom module code is never imported",
                details={"field": f"modules.json[{i}].type", "value": module["type"]},
            )
    return modules
