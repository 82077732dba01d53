"""Models, versions, aliases and comparisons on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from aiaas.entities.registry import VersionStatus
from aiaas.schemas._base import MAX_ID, Wire, WireIn

__all__ = [
    "Alias",
    "AliasList",
    "AliasSet",
    "Comparison",
    "Health",
    "Model",
    "ModelCreate",
    "ModelList",
    "ModelUpdate",
    "ModelVersion",
    "ModelVersionList",
    "OutputAgreement",
    "VersionMetadata",
]


class Health(Wire):
    """The control plane is up; which aiaas it runs, and where its inference server listens."""

    status: str
    version: str
    inference_url: str | None = Field(
        default=None,
        description="URL of the inference server this control plane deploys to (what `aiaas up` "
        "started, or AIAAS_INFERENCE_URL / AIAAS_INFERENCE_PORT); the SDK and CLI send predictions "
        "there when not given another. Absent from control planes older than this field.",
    )


class Model(Wire):
    name: str
    description: str
    tags: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None
    aliases: dict[str, int] = Field(default_factory=dict)


class ModelList(Wire):
    models: list[Model]


class ModelCreate(WireIn):
    name: str = Field(description="Letters, digits, '-', '_' and '.'; starts with a letter or digit.")
    description: str = ""
    tags: dict[str, Any] = Field(default_factory=dict)


class ModelUpdate(WireIn):
    description: str | None = None
    tags: dict[str, Any] | None = None


class ModelVersion(Wire):
    """One immutable version. ``signature`` holds its input and output tensors; ``example``
    its stored input example as V2 tensors (``{"inputs": [...]}``)."""

    model: str
    version: int
    status: VersionStatus = Field(description="ready (served, takes aliases) or archived.")
    flavor: str
    artifact_digest: str
    artifact_size_bytes: int
    signature: dict[str, Any]
    example: dict[str, Any]
    metrics: dict[str, Any]
    params: dict[str, Any]
    description: str
    source: str
    parent_version: int | None
    created_at: datetime
    aliases: tuple[str, ...] = ()
    lineage: dict[str, Any] | None = Field(
        default=None,
        description="For versions made by a training job: the dataset version, the job and its spec, "
        "the state to continue training from, and the training data's reference statistics.",
    )


class ModelVersionList(Wire):
    versions: list[ModelVersion]


class VersionMetadata(WireIn):
    """The ``metadata`` form field sent beside an uploaded ``.onnx`` file.

    The signature is always read from the ONNX graph itself, never taken from the client.
    """

    flavor: str = Field(default="onnx", description="Where the model came from: sklearn, pytorch or onnx.")
    example: list[dict[str, Any]] = Field(
        default_factory=list, description="Input example as V2 tensors {name, datatype, shape, data}."
    )
    metrics: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    source: str = Field(default="", description="Where the version came from (a file, a job, a notebook).")
    parent_version: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The version this one was derived from."
    )
    reference_dataset: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A dataset (name or name:version) the version's drift reference is built from: "
        "its feature columns (every column but the target, in order) and the model's answers on "
        "them. Without it, the version's first traffic becomes its reference.",
    )


class Alias(Wire):
    model: str
    name: str
    version: int
    previous_version: int | None
    updated_at: datetime


class AliasList(Wire):
    aliases: list[Alias]


class AliasSet(WireIn):
    version: int = Field(description="The version the alias should point at.", ge=1, le=MAX_ID)


class OutputAgreement(Wire):
    output: str
    equal_fraction: float
    max_abs_diff: float | None


class Comparison(Wire):
    """Two versions side by side; ``agreement`` is how their predictions on version a's
    stored example agree, output by output (empty when the signatures differ)."""

    model: str
    a: ModelVersion
    b: ModelVersion
    metrics: dict[str, dict[str, Any]]
    params: dict[str, dict[str, Any]]
    same_signature: bool
    size_ratio: float
    agreement: list[OutputAgreement]
    example_rows: int
    feature_importance: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Feature → permutation importance on the validation split in each version "
        "({a, b, delta}), for versions trained on the platform.",
    )
