"""Drift references of model versions: built from a table and the model's answers on it, stored
with the version.

A version's reference (:class:`aiaas.monitoring.ReferenceProfile`) fixes the bins its live
traffic is counted into. It is built once, from one of, in this order of preference:

* its training dataset, when a training job registers it (``source.kind = "training"``);
* a dataset version named when an uploaded model is registered or deployed
  (``source.kind = "dataset"``);
* the first :data:`aiaas.config.Settings.drift_reference_rows` rows of its traffic, counted
  by the inference server when neither exists (``source.kind = "traffic"``).

Besides the profile, a reference keeps its **layout**: which column of which input tensor is
which feature (a tabular model takes one ``(rows, features)`` tensor; a model may also take
one tensor per feature), and which output is profiled (the predicted class of a classifier,
the value of a regressor: what :func:`aiaas.monitoring.performance.task_of` scores), so the
inference server can cut a request's tensors into the profile's columns.

A feature whose reference values are all whole numbers with at most ``max_categories``
distinct values (codes, class ids, flags) is profiled as categorical; every other number is
numeric. Stored as one row of ``drift_references`` per version (migration 0009).

A reference also keeps a seeded sample of its feature rows (:func:`sample_rows`, at most
:data:`SAMPLE_ROWS` rows and :data:`SAMPLE_CELLS` values; migration 0020): the rows a
deployment with ``outlier_scores`` on fits its Isolation Forest on. Only when every feature
is a number (a text or string-coded feature has no distance an Isolation Forest can split
on): a version with other features keeps no sample and its requests get no outlier scores.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from aiaas.datasets import DatasetService
from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.entities.registry import ModelVersion
from aiaas.errors import AiaasError, InvalidArgument, NotFound
from aiaas.explain import BACKGROUND_ROWS, BACKGROUND_SEED, encode_background, sample_background
from aiaas.formats import FOLDER_FLAVORS, OnnxModel, Signature, numpy_dtype
from aiaas.monitoring import ReferenceProfile
from aiaas.registry.service import Registry
from aiaas.schemas.monitoring import DriftSettings
from aiaas.store import Database
from aiaas.store.drift import ReferenceRecord, ReferenceRows, now

logger = logging.getLogger("aiaas.registry.references")

__all__ = [
    "MAX_REFERENCE_ROWS",
    "SAMPLE_CELLS",
    "SAMPLE_ROWS",
    "Layout",
    "ReferenceStore",
    "StoredReference",
    "build_reference",
    "check_reference_dataset",
    "dataset_reference",
    "layout_of",
    "record_reference",
    "sample_rows",
    "store_training_reference",
]

#: Rows of a reference table the model is run on (a seeded sample past it): the model's
#: answers are the output's reference, and running a large model over a whole dataset at
#: registration would take too long. Input counts are exact over the same rows.
MAX_REFERENCE_ROWS = 100_000
#: Most reference rows kept as the outlier sample: an Isolation Forest draws 256 rows per
#: tree, so a thousand give its trees different draws without storing a dataset.
SAMPLE_ROWS = 1024
#: Most values (rows x features) in the outlier sample: fewer rows for wide models, so a
#: reference row stays under a megabyte of JSON.
SAMPLE_CELLS = 65_536

Run = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Layout:
    """Which input tensor column is which feature, and which output is profiled.

    ``inputs``: tensor name → the feature name of each of its columns (one name for a
    tensor of one column per row). ``output``: the profiled output tensor, or None.
    """

    inputs: dict[str, list[str]]
    output: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "output": self.output}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        return cls({str(k): [str(n) for n in v] for k, v in data["inputs"].items()}, data.get("output"))

    @property
    def features(self) -> list[str]:
        """Every input feature, in tensor and column order (the outlier sample's columns)."""
        return [name for names in self.inputs.values() for name in names]

    def columns(
        self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """A batch's tensors cut into the profile's columns (inputs, outputs)."""
        columns: dict[str, np.ndarray] = {}
        for tensor, names in self.inputs.items():
            array = np.asarray(inputs[tensor])
            matrix = array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1)
            if matrix.shape[1] != len(names):
                raise InvalidArgument(
                    f"input {tensor!r} has {matrix.shape[1]} columns; its reference has {len(names)}",
                    details={"field": tensor},
                )
            for j, name in enumerate(names):
                columns[name] = matrix[:, j]
        answered: dict[str, np.ndarray] = {}
        if self.output is not None and outputs is not None and self.output in outputs:
            answered[self.output] = np.asarray(outputs[self.output]).reshape(-1)
        return columns, answered


@dataclass(frozen=True)
class StoredReference:
    """A version's reference as stored: profile, layout, where it came from, and the sample of
    its feature rows (``(rows, features)`` in :attr:`Layout.features` order; None: none kept)."""

    profile: ReferenceProfile
    layout: Layout
    source: dict[str, Any]
    created_at: datetime
    sample: np.ndarray | None = None


def layout_of(signature: Signature, feature_names: Sequence[str] | None = None) -> Layout:
    """The layout of a tabular model's signature.

    Args:
        signature: the version's.
        feature_names: the names of the columns of a single ``(rows, features)`` input; default
            ``<input>[j]``. A model with several inputs names each feature by its tensor.

    Raises:
        InvalidArgument: the model takes inputs that are not one row of numbers per request row
            (images, sequences), or ``feature_names`` does not fit its one input.
    """
    inputs: dict[str, list[str]] = {}
    for spec in signature.inputs:
        if len(spec.shape) > 2:
            raise InvalidArgument(
                f"input {spec.name!r} has shape {list(spec.shape)}: drift is profiled for tabular "
                "models, whose inputs have one row of values per request row",
                details={"field": "inputs", "value": spec.name},
            )
        width = spec.shape[1] if len(spec.shape) == 2 else 1
        if len(signature.inputs) == 1 and feature_names is not None:
            if width >= 0 and len(feature_names) != width:
                raise InvalidArgument(
                    f"the reference table has {len(feature_names)} feature columns; input "
                    f"{spec.name!r} takes {width}",
                    details={"field": "reference_dataset", "expected": width, "got": len(feature_names)},
                )
            inputs[spec.name] = list(feature_names)
        elif width == 1:
            inputs[spec.name] = [spec.name]
        elif width > 1:
            inputs[spec.name] = [f"{spec.name}[{j}]" for j in range(width)]
        else:
            raise InvalidArgument(
                f"input {spec.name!r} has a free number of columns: name the features (the "
                "columns of a reference dataset)",
                details={"field": "inputs", "value": spec.name},
            )
    return Layout(inputs, _value_output(signature))


def _value_output(signature: Signature) -> str | None:
    """The output whose values are profiled: a classifier's predicted class (not its scores),
    else the first output with one value per row. The same rule as the live performance's."""
    scored = [t.name for t in signature.outputs if t.classes is not None]
    for spec in signature.outputs:
        if spec.name not in scored and (len(spec.shape) <= 1 or spec.shape[1:] == (1,)):
            return spec.name
    return None


def build_reference(
    signature: Signature,
    run: Run | None,
    table: Mapping[str, np.ndarray],
    feature_names: Sequence[str] | None,
    *,
    settings: DriftSettings | None = None,
    seed: int = 0,
) -> tuple[ReferenceProfile, Layout]:
    """Profile ``table`` (feature name → column) and the model's answers on it.

    Args:
        signature: the version's, to lay the features out into its input tensors.
        run: runs the model on input tensors; None profiles the inputs only.
        table: at least the feature columns.
        feature_names: the features, in the column order of a single input tensor (None: a
            model with one input per feature, named by its tensor).
        settings: binning (``numeric_bins``, ``max_categories``).
        seed: of the row sample past :data:`MAX_REFERENCE_ROWS`.

    Raises:
        InvalidArgument: a feature column is missing, or the table does not fit the model.
    """
    settings = settings or DriftSettings()
    layout = layout_of(signature, feature_names)
    missing = [n for names in layout.inputs.values() for n in names if n not in table]
    if missing:
        raise InvalidArgument(
            f"the reference table lacks the model's features {missing[:10]}",
            details={"field": "reference_dataset", "missing": missing[:50]},
        )
    rows = len(next(iter(table.values())))
    pick = None
    if rows > MAX_REFERENCE_ROWS:
        pick = np.sort(np.random.default_rng(seed).choice(rows, MAX_REFERENCE_ROWS, replace=False))
    tensors: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        names = layout.inputs[spec.name]
        picked = [np.asarray(table[n]) if pick is None else np.asarray(table[n])[pick] for n in names]
        matrix = np.column_stack(picked).astype(numpy_dtype(spec.datatype), copy=False)
        tensors[spec.name] = matrix if len(spec.shape) == 2 else matrix.reshape(-1)
    columns, _ = layout.columns(tensors)
    outputs: dict[str, np.ndarray] = {}
    if run is not None and layout.output is not None:
        _, outputs = layout.columns(tensors, run(tensors))
    categorical = [n for n, c in {**columns, **outputs}.items() if _is_coded(c, settings.max_categories)]
    profile = ReferenceProfile.build(columns, outputs, categorical=categorical, settings=settings, seed=seed)
    return profile, layout


def sample_rows(layout: Layout, table: Mapping[str, Any], *, seed: int = 0) -> np.ndarray | None:
    """A seeded sample of ``table``'s rows (feature name → column) in the layout's feature
    order, as float64: at most :data:`SAMPLE_ROWS` rows and :data:`SAMPLE_CELLS` values, rows
    with a missing or infinite value left out. None when a feature is not numeric (text,
    string categories) or no whole row is left."""
    names = layout.features
    try:
        matrix = np.column_stack([np.asarray(table[n], dtype=np.float64).reshape(-1) for n in names])
    except (KeyError, TypeError, ValueError):
        return None
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    most = min(SAMPLE_ROWS, max(1, SAMPLE_CELLS // max(1, len(names))))
    if len(matrix) > most:
        matrix = matrix[np.sort(np.random.default_rng(seed).choice(len(matrix), most, replace=False))]
    return matrix if len(matrix) else None


def _is_coded(column: np.ndarray, most: int) -> bool:
    """Whole numbers with few distinct values: codes, ids or flags, profiled as categories."""
    if column.dtype.kind in "bUSO":
        return False  # categorical by their type already
    if column.dtype.kind in "iu":
        return len(np.unique(column)) <= most
    finite = column[np.isfinite(column)]
    return len(finite) > 0 and bool(np.all(finite == np.round(finite))) and len(np.unique(finite)) <= most


class ReferenceStore:
    """Read and write the drift references of model versions (rows in :mod:`aiaas.store.drift`).

    Example:
        >>> store = ReferenceStore(db)  # doctest: +SKIP
        >>> store.put("iris", 1, profile, layout, {"kind": "dataset", "dataset": "iris:1"})  # doctest: +SKIP
        >>> store.get("iris", 1).profile.digest  # doctest: +SKIP
    """

    def __init__(self, db: Database, *, project: str | None = DEFAULT_PROJECT) -> None:
        self.db = db
        self.project = project
        self._rows = ReferenceRows(db, project=project)

    def put(
        self,
        model: str,
        version: int,
        profile: ReferenceProfile,
        layout: Layout,
        source: Mapping[str, Any],
        *,
        sample: np.ndarray | None = None,
        replace: bool = True,
    ) -> bool:
        """Store a version's reference (and its outlier sample, :func:`sample_rows`); with
        ``replace=False`` keep one already there.

        Returns whether it was stored (an unknown version stores nothing).
        """
        rows = None if sample is None else np.asarray(sample, dtype=np.float64).tolist()
        record = ReferenceRecord(
            profile.digest, profile.to_dict(), layout.to_dict(), dict(source), now(), sample=rows
        )
        return self._rows.put(model, version, record, replace=replace)

    def get(self, model: str, version: int) -> StoredReference | None:
        """The version's reference; None when it has none (or is gone)."""
        record = self._rows.get(model, version)
        if record is None:
            return None
        return StoredReference(
            profile=ReferenceProfile.from_dict(record.profile),
            layout=Layout.from_dict(record.layout),
            source=record.source,
            created_at=record.created_at,
            sample=None if record.sample is None else np.asarray(record.sample, dtype=np.float64),
        )


def record_reference(
    registry: Registry,
    model: str,
    version: int,
    table: Mapping[str, np.ndarray],
    feature_names: Sequence[str],
    source: Mapping[str, Any],
    *,
    settings: DriftSettings | None = None,
) -> StoredReference:
    """Build a version's reference from ``table`` and the version's own answers on it, and store it.

    Raises:
        InvalidArgument: the version is a model folder (language or embedding model: no
            tabular inputs), or the table does not fit it.
    """
    found = registry.get_version(model, version)
    if found.flavor in FOLDER_FLAVORS:
        raise InvalidArgument(
            f"{model} version {version} is a {found.flavor} folder: drift is profiled for tabular models",
            details={"field": "reference_dataset"},
        )
    runtime = OnnxModel(registry.load_artifact(found))
    signature = Signature.from_dict(found.signature)
    profile, layout = build_reference(signature, runtime.run, table, feature_names, settings=settings)
    ReferenceStore(registry.db, project=registry.project).put(
        model, version, profile, layout, source, sample=sample_rows(layout, table)
    )
    stored = ReferenceStore(registry.db, project=registry.project).get(model, version)
    assert stored is not None
    return stored


def store_training_reference(
    registry: Registry,
    version: ModelVersion,
    features: np.ndarray,
    feature_names: Sequence[str],
    dataset: Any,
) -> None:
    """The hook a training job calls after registering: the version's reference from its training
    rows. Best-effort: a reference that cannot be built (a model whose inputs are not tabular)
    is logged and the version stays registered; its traffic then builds one."""
    table = {name: features[:, j] for j, name in enumerate(feature_names)}
    source = {"kind": "training", "dataset": f"{dataset.dataset}:{dataset.version}", "split": "train"}
    try:
        record_reference(registry, version.model, version.version, table, feature_names, source)
    except AiaasError as exc:
        logger.warning("no drift reference for %s v%d: %s", version.model, version.version, exc)


def dataset_reference(
    registry: Registry, datasets: DatasetService, model: str, version: int, ref: str
) -> StoredReference:
    """Build and store a version's reference from a dataset version (``name`` or ``name:version``):
    its feature columns (every column but its target, in order) and the model's answers on them.

    Raises:
        InvalidArgument: naming ``reference_dataset``: malformed, unknown, or not fitting the model.
    """
    name, wanted = check_reference_dataset(datasets, ref)
    loaded = datasets.load(name, wanted)
    target = loaded.target
    names = [n for n in loaded.column_names if n != target]
    source = {"kind": "dataset", "dataset": f"{loaded.name}:{loaded.version.version}"}
    try:
        stored = record_reference(registry, model, version, loaded.columns, names, source)
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"reference_dataset {ref!r} does not fit {model} version {version}: {exc.message}",
            details={"field": "reference_dataset", "value": ref},
        ) from None
    return _with_background(registry, model, version, stored, loaded.columns)


def _with_background(
    registry: Registry, model: str, version: int, stored: StoredReference, table: Mapping[str, Any]
) -> StoredReference:
    """Keep a seeded sample of the reference rows as the version's explanation background.

    An uploaded model has no training rows of its own; the dataset named as its reference is
    the data it is meant to see, so explanations integrate over it (the same sample a training
    job stores, :func:`aiaas.explain.sample_background`). Only for a model taking its features
    as one numeric ``(rows, features)`` tensor, the kind explanations cover.
    """
    if len(stored.layout.inputs) != 1:
        return stored
    (features,) = stored.layout.inputs.values()
    try:
        x = np.column_stack([np.asarray(table[name], dtype=np.float32) for name in features])
    except (KeyError, TypeError, ValueError):  # text or other non-numeric columns
        return stored
    background = sample_background(x, BACKGROUND_ROWS, BACKGROUND_SEED)
    digest = registry.artifacts.put(encode_background(background))
    entry = {"digest": digest, "rows": int(background.shape[0]), "seed": BACKGROUND_SEED}
    source = {**stored.source, "background": entry, "feature_names": list(features)}
    ReferenceStore(registry.db, project=registry.project).put(
        model, version, stored.profile, stored.layout, source, sample=stored.sample
    )
    return dataclasses.replace(stored, source=source)


def check_reference_dataset(datasets: DatasetService, ref: str) -> tuple[str, int | None]:
    """``name`` or ``name:version`` of an existing dataset version, split (None: the latest).

    Raises:
        InvalidArgument: naming ``reference_dataset``, malformed or unknown.
    """
    name, _, number = ref.partition(":")
    try:
        wanted = None if number in ("", "latest") else int(number)
        datasets.get_version(name, wanted)
    except (ValueError, NotFound):
        raise InvalidArgument(
            f"reference_dataset: no dataset version {ref!r}; expected an existing 'name' or 'name:version'",
            details={"field": "reference_dataset", "value": ref},
        ) from None
    return name, wanted
