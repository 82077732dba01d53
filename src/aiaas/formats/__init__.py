"""Model formats: conversion to ONNX, signatures, input examples, and running ONNX."""

from __future__ import annotations

from aiaas.formats.classes import CLASSES_KEY, check_classes, class_key, label_classes
from aiaas.formats.examples import decode_tensors, encode_tensors, to_array
from aiaas.formats.external_data import isolated_folder
from aiaas.formats.onnx_model import OnnxModel, parse_onnx, signature_of
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
    "ModelPackage",
    "OnnxModel",
    "Signature",
    "TensorSpec",
    "check_classes",
    "class_key",
    "datatype_name",
    "datatype_of",
    "decode_tensors",
    "encode_tensors",
    "isolated_folder",
    "label_classes",
    "numpy_dtype",
    "package_model",
    "parse_onnx",
    "signature_of",
    "to_array",
]
