"""The SDK's part for datasets: register files or samples as versions, read them back.

A mixin of :class:`aiaas.Client`, like :mod:`.monitoring`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from aiaas import schemas
from aiaas.errors import InvalidArgument
from aiaas.sdk._deprecation import renamed
from aiaas.sdk._http import request, request_body

__all__ = ["DatasetMethods"]


class DatasetMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/datasets``."""

    _api: httpx.Client  # set by Client

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

    def _send(self, method: str, path: str, body: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

    def create_dataset(
        self,
        name: str,
        path_or_bytes: str | Path | bytes | None = None,
        *,
        sample: str | None = None,
        target: str | None = None,
        description: str = "",
        validation_fraction: float = 0.2,
        seed: int = 0,
        filename: str | None = None,
        text_column: str | None = None,
        prompt_column: str | None = None,
        response_column: str | None = None,
        documents: str | None = None,
    ) -> schemas.DatasetVersion:
        """Register a CSV/Parquet/JSONL file or a ``.txt`` corpus (a path or its bytes) or a
        bundled ``sample`` (iris, wine, breast_cancer, digits, diabetes) as the next version
        of dataset ``name``.

        The same file with the same ``target``, text options, ``validation_fraction`` and
        ``seed`` gives back the version that already holds it. ``filename`` names bytes
        (default ``data.csv``; Parquet is recognised by its content either way; ``.jsonl`` and
        ``.txt`` by the name).

        Text datasets: a ``.txt`` corpus is one (column ``text``), cut into documents at blank
        lines, or one per line with ``documents="line"``; in other files name the text with
        ``text_column``, or chat pairs with ``prompt_column`` and ``response_column``.

        Raises:
            InvalidArgument: neither or both of a file and a sample, or bad data (the
                server's message names the column or field).
        """
        if (path_or_bytes is None) == (sample is None):
            raise InvalidArgument(
                "give either a file (path or bytes) or sample=..., not both or neither",
                details={"field": "sample"},
            )
        if sample is not None:
            body = request_body(
                schemas.DatasetSampleCreate, sample=sample, validation_fraction=validation_fraction, seed=seed
            )
            response = self._send("POST", f"/datasets/{name}/versions", body)
            return schemas.DatasetVersion.model_validate_json(response.content)
        if isinstance(path_or_bytes, bytes):
            data, fname = path_or_bytes, filename or "data.csv"
        else:
            path = Path(str(path_or_bytes))
            if not path.is_file():
                raise InvalidArgument(
                    f"dataset file {str(path)!r} does not exist or is not a file",
                    details={"field": "path_or_bytes", "value": str(path)},
                )
            data, fname = path.read_bytes(), filename or path.name
        form = {
            "description": description,
            "validation_fraction": str(validation_fraction),
            "seed": str(seed),
        }
        if target is not None:
            form["target"] = target
        text = {
            "text_column": text_column,
            "prompt_column": prompt_column,
            "response_column": response_column,
            "documents": documents,
        }
        form.update({k: v for k, v in text.items() if v is not None})
        response = request(
            self._api,
            "POST",
            f"/datasets/{name}/versions",
            files={"file": (fname, data, "application/octet-stream")},
            data=form,
        )
        return schemas.DatasetVersion.model_validate_json(response.content)

    def list_datasets(self) -> list[schemas.Dataset]:
        return schemas.DatasetList.model_validate_json(self._get("/datasets").content).datasets

    def get_dataset(self, name: str) -> schemas.Dataset:
        return schemas.Dataset.model_validate_json(self._get(f"/datasets/{name}").content)

    def list_dataset_versions(self, name: str) -> list[schemas.DatasetVersion]:
        return schemas.DatasetVersionList.model_validate_json(
            self._get(f"/datasets/{name}/versions").content
        ).versions

    def get_dataset_version(self, name: str, version: int | None = None) -> schemas.DatasetVersion:
        """A version with its schema, statistics and split; ``None`` is the latest."""
        ref = "latest" if version is None else str(version)
        return schemas.DatasetVersion.model_validate_json(
            self._get(f"/datasets/{name}/versions/{ref}").content
        )

    def download_dataset(self, name: str, version: int | None = None) -> bytes:
        """The version's data file, as uploaded."""
        ref = "latest" if version is None else str(version)
        return self._get(f"/datasets/{name}/versions/{ref}/data").content

    # The names before the list_/get_ convention; removed in the next release.
    datasets = renamed(list_datasets, "datasets")
    dataset = renamed(get_dataset, "dataset")
    dataset_versions = renamed(list_dataset_versions, "dataset_versions")
    dataset_version = renamed(get_dataset_version, "dataset_version")
