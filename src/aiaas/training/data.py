"""The arrays a trainer works on, and their checks.

The orchestrator builds a :class:`TrainingData` from a dataset version (its split, its
target, its label encoding); the trainer never reads a dataset itself, so it can be tested
on plain numpy arrays and run in a worker process that has no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument

__all__ = ["TrainingData"]

Array = np.ndarray[Any, Any]


@dataclass
class TrainingData:
    """A train/validation split ready for training.

    Attributes:
        x_train: float32 features, shape (n, d).
        y_train: int64 class indices (classification) or float32 values (regression), shape (n,).
        x_val: float32 features, shape (m, d).
        y_val: as ``y_train``, shape (m,).
        feature_names: one name per column of ``x``.
        task: "classification" or "regression".
        classes: the original label of each class index (classification), else None.
        image_shape: (channels, height, width) when the rows are flattened images, for the CNN.

    Example::

        data = TrainingData(x, y, xv, yv, ["a", "b"], "classification", classes=["no", "yes"])
    """

    x_train: Array
    y_train: Array
    x_val: Array
    y_val: Array
    feature_names: list[str]
    task: str
    classes: list[str | int | float | bool] | None = None
    image_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self.x_train = np.ascontiguousarray(self.x_train, dtype=np.float32)
        self.x_val = np.ascontiguousarray(self.x_val, dtype=np.float32)
        label_dtype = np.int64 if self.task == "classification" else np.float32
        self.y_train = np.ascontiguousarray(self.y_train, dtype=label_dtype)
        self.y_val = np.ascontiguousarray(self.y_val, dtype=label_dtype)
        self.feature_names = list(self.feature_names)
        if self.image_shape is not None:
            self.image_shape = tuple(int(s) for s in self.image_shape)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (1 for regression: one output)."""
        if self.task != "classification":
            return 1
        if self.classes is not None:
            return len(self.classes)
        return int(max(self.y_train.max(initial=0), self.y_val.max(initial=0))) + 1

    def check(self) -> None:
        """Refuse arrays a trainer would fail on later, naming what is wrong.

        Raises:
            InvalidArgument: wrong task, shapes that disagree, empty splits, NaN/inf
                features, labels outside ``classes``, or an image shape that does not
                match the number of features.
        """
        if self.task not in ("classification", "regression"):
            raise _bad("task", f"must be 'classification' or 'regression'; got {self.task!r}")
        for name in ("x_train", "x_val"):
            x = getattr(self, name)
            if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
                raise _bad(name, f"must be a non-empty 2-D array; got shape {list(x.shape)}")
            if not np.isfinite(x).all():
                raise _bad(name, "holds NaN or infinite values; impute or drop them first")
        if self.x_val.shape[1] != self.n_features:
            raise _bad("x_val", f"has {self.x_val.shape[1]} columns, x_train has {self.n_features}")
        if len(self.feature_names) != self.n_features:
            raise _bad("feature_names", f"has {len(self.feature_names)} names for {self.n_features} columns")
        for x_name, y_name in (("x_train", "y_train"), ("x_val", "y_val")):
            y = getattr(self, y_name)
            if y.ndim != 1 or y.shape[0] != getattr(self, x_name).shape[0]:
                raise _bad(y_name, f"must be 1-D with one value per row of {x_name}; got {list(y.shape)}")
        if self.task == "classification":
            n = self.n_classes
            for name in ("y_train", "y_val"):
                y = getattr(self, name)
                if y.min() < 0 or y.max() >= n:
                    raise _bad(name, f"holds class indices outside 0..{n - 1}")
            if n < 2:
                raise _bad("classes", f"classification needs at least 2 classes; got {n}")
        elif not (np.isfinite(self.y_train).all() and np.isfinite(self.y_val).all()):
            raise _bad("y_train", "regression targets must be finite numbers")
        if self.image_shape is not None and int(np.prod(self.image_shape)) != self.n_features:
            raise _bad(
                "image_shape",
                f"{list(self.image_shape)} holds {int(np.prod(self.image_shape))} values, "
                f"but rows have {self.n_features} features",
            )

    def class_labels(self) -> list[str | int | float | bool]:
        """The label of each class index: ``classes``, or the indices themselves when none
        were given (classification only)."""
        return list(self.classes) if self.classes is not None else list(range(self.n_classes))

    def integer_labels(self) -> Array | None:
        """The class labels as int64 when they are increasing integers, else None.

        scikit-learn families are then fitted on these labels (so a warm start's stored
        ``classes_`` are the labels); with other labels (text, fractions, booleans) they are
        fitted on class indices. Either way the exported graph answers with the labels.
        """
        if self.task != "classification":
            return None
        classes = self.classes if self.classes is not None else list(range(self.n_classes))
        try:
            values = [float(c) for c in classes]
        except (TypeError, ValueError):
            return None
        if any(isinstance(c, str | bool) or not v.is_integer() for c, v in zip(classes, values, strict=True)):
            return None
        labels = np.asarray([int(v) for v in values], dtype=np.int64)
        # Increasing, so class index order is scikit-learn's sorted ``classes_`` order and the
        # probability columns of every family mean the same classes.
        if np.any(np.diff(labels) <= 0):
            return None
        return labels


def _bad(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"training data: {field} {message}", details={"field": field})
