"""The ``transformer`` family's network: a ``transformers`` causal language model.

A fresh model is GPT-2 (``GPT2LMHeadModel``: decoder-only, learnt positions, a KV cache at
inference) built from the spec's width, depth, heads and context length; a warm-started one
is whatever causal LM its registered folder holds (a GPT-2 trained here, or an imported model
of an architecture ``transformers`` ships). Either way the model is described by its
``config.json`` text, which travels in every checkpoint, so a resumed job rebuilds exactly
the same network.

The trained model is saved as a Hugging Face folder, the layout the registry stores for
``hf-causal-lm`` versions and the PyTorch runtime serves: ``config.json``,
``generation_config.json``, ``model.safetensors`` (``save_pretrained``: safetensors, no
pickle) and the tokenizer files.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from aiaas.errors import InvalidArgument
from aiaas.formats import HF_CAUSAL_LM, FolderPackage, package_folder

__all__ = ["build_model", "export_folder", "gpt2_config", "read_folder_model"]

#: Files of a model folder that describe the model rather than its tokenizer.
_MODEL_FILES = ("config.json", "generation_config.json")


def _quiet() -> None:
    """No progress bars from ``transformers`` in job logs (they are for terminals)."""
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def gpt2_config(params: Mapping[str, Any], *, vocab_size: int, eos_id: int) -> str:
    """The ``config.json`` text of a fresh GPT-2 with the effective hyper-parameters."""
    from transformers import GPT2Config

    dropout = float(params["dropout"])
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=int(params["context_length"]),
        n_embd=int(params["n_embd"]),
        n_layer=int(params["n_layer"]),
        n_head=int(params["n_head"]),
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    config.architectures = ["GPT2LMHeadModel"]
    return str(config.to_json_string())


def build_model(config_json: str, *, dropout: float | None = None) -> torch.nn.Module:
    """A causal LM with fresh weights (drawn from torch's generator) from its config text.

    ``dropout``, when given, replaces the config's dropout probabilities (GPT-2's three, or
    the ``attention_dropout``/``hidden_dropout`` of other architectures).
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    values = json.loads(config_json)
    model_type = values.pop("model_type")
    values.pop("transformers_version", None)
    if dropout is not None:
        for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "attention_dropout", "hidden_dropout"):
            if key in values:
                values[key] = dropout
    config = AutoConfig.for_model(model_type, **values)
    model: torch.nn.Module = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
        config, dtype=torch.float32
    )
    return model


def config_text(model: torch.nn.Module) -> str:
    """The model's ``config.json`` text (what :func:`build_model` takes)."""
    config: Any = model.config
    return str(config.to_json_string())


def context_length(config_json: str) -> int | None:
    """The longest input the architecture takes, from its config (None when it does not say)."""
    values = json.loads(config_json)
    for key in ("n_positions", "max_position_embeddings", "n_ctx", "max_seq_len", "seq_length"):
        value = values.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def export_folder(model: torch.nn.Module, tokenizer_files: Mapping[str, str]) -> FolderPackage:
    """The model (on CPU, float32) and its tokenizer as a checked ``hf-causal-lm`` folder package.

    Raises:
        InvalidArgument: the folder would not be servable (the registry's own checks).
    """
    _quiet()
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="aiaas-lm-") as tmp:
        model.save_pretrained(tmp)  # type: ignore[operator]  # safetensors weights, no pickle
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                files[path.relative_to(tmp).as_posix()] = path.read_bytes()
    for name, text in tokenizer_files.items():
        files[name] = text.encode("utf-8")
    return package_folder(files, HF_CAUSAL_LM)


def read_folder_model(files: Mapping[str, bytes]) -> dict[str, Any]:
    """A registered causal LM folder, read for fine-tuning: its weights as float32 tensors,
    its config text, and its tokenizer (``tokenizers`` JSON, its files, its end-of-text token).

    Raises:
        InvalidArgument: the folder is not a causal LM with a fast (``tokenizers``) tokenizer
            that has an end-of-text token.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet()
    with tempfile.TemporaryDirectory(prefix="aiaas-warm-") as tmp:
        for name, data in files.items():
            path = Path(tmp) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        try:
            model = AutoModelForCausalLM.from_pretrained(tmp, local_files_only=True, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidArgument(
                f"warm_start: the registered folder cannot be loaded as a causal language model: {exc}",
                details={"field": "warm_start"},
            ) from None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise InvalidArgument(
            "warm_start: the model's tokenizer is not a fast (tokenizers) tokenizer, which training needs",
            details={"field": "warm_start"},
        )
    eos = tokenizer.eos_token
    eos_id = tokenizer.convert_tokens_to_ids(eos) if isinstance(eos, str) else None
    if not isinstance(eos_id, int):
        eos_id = model.config.eos_token_id
    if not isinstance(eos_id, int):
        raise InvalidArgument(
            "warm_start: the model's tokenizer has no end-of-text token to separate documents with",
            details={"field": "warm_start"},
        )
    tokenizer_files = {
        name: data.decode("utf-8")
        for name, data in files.items()
        if name not in _MODEL_FILES and not name.endswith(".safetensors") and not name.endswith(".index.json")
    }
    return {
        "config": config_text(model),
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "tokenizer": str(backend.to_str()),
        "tokenizer_files": tokenizer_files,
        "eos_id": int(eos_id),
    }
