"""Model formats: conversion to ONNX, signatures, input examples, running ONNX, and model
folders (Hugging Face layout) stored as a manifest of files."""

from __future__ import annotations

from aiaas.formats.classes import CLASSES_KEY, check_classes, class_key, label_classes
from aiaas.formats.examples import decode_tensors, encode_tensors, to_array
from aiaas.formats.external_data import isolated_folder
from aiaas.formats.folder import (
    FOLDER_FORMAT,
    FolderPackage,
    FolderSignature,
    Manifest,
    check_file_name,
    is_skipped_file,
    materialize,
    read_folder,
)
from aiaas.formats.hf import FOLDER_FLAVORS, HF_CAUSAL_LM, HF_EMBEDDING, package_folder
from aiaas.formats.onnx_model import OnnxModel, parse_onnx, signature_of
from aiaas.formats.onnx_session import execution_providers, new_session
from aiaas.formats.package import FLAVORS, ModelPackage, package_model
from aiaas.formats.signature import (
    DATATYPES,
    Signature,
    TensorSpec,
    datatype_name,
    datatype_of,
    numpy_dtype,
)

__all__ = [
    "CLASSES_KEY",
    "DATATYPES",
    "FLAVORS",
    "FOLDER_FLAVORS",
    "FOLDER_FORMAT",
    "HF_CAUSAL_LM",
    "HF_EMBEDDING",
    "FolderPackage",
    "FolderSignature",
    "Manifest",
    "ModelPackage",
    "OnnxModel",
    "Signature",
    "TensorSpec",
    "check_classes",
    "check_file_name",
    "class_key",
    "datatype_name",
    "datatype_of",
    "decode_tensors",
    "encode_tensors",
    "execution_providers",
    "is_skipped_file",
    "isolated_folder",
    "label_classes",
    "materialize",
    "new_session",
    "numpy_dtype",
    "package_folder",
    "package_model",
    "parse_onnx",
    "read_folder",
    "signature_of",
    "to_array",
]
