"""``/api/v1/datasets``: datasets, their versions (CSV/Parquet/JSONL upload, a ``.txt`` corpus, or
a bundled sample), schema, statistics, split and the stored data file."""

from __future__ import annotations

import math
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from aiaas import schemas
from aiaas.api.deps import ServicesDep
from aiaas.api.params import Name, version_ref
from aiaas.errors import InvalidArgument, PayloadTooLarge
from aiaas.translate import invalid_argument

__all__ = ["router"]

router = APIRouter(prefix="/datasets", tags=["datasets"])

_CHUNK = 1024 * 1024
_TEXT_FIELDS = ("text_column", "prompt_column", "response_column", "documents")
_FORM_FIELDS = ("target", "description", "validation_fraction", "seed", *_TEXT_FIELDS)
_MEDIA_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/jsonl",
    "text": "text/plain; charset=utf-8",
}
_EXTENSIONS = {"text": "txt"}

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV, Parquet, JSONL (.jsonl) or a text corpus (.txt).",
                        },
                        "target": {"type": "string", "description": "Label column (optional)."},
                        "description": {"type": "string"},
                        "validation_fraction": {"type": "number", "default": 0.2},
                        "seed": {"type": "integer", "default": 0},
                        "text_column": {
                            "type": "string",
                            "description": "The column holding text: makes a text dataset "
                            "(a .txt corpus is always column 'text').",
                        },
                        "prompt_column": {
                            "type": "string",
                            "description": "Chat pairs: the prompt column (with response_column).",
                        },
                        "response_column": {
                            "type": "string",
                            "description": "Chat pairs: the response column (with prompt_column).",
                        },
                        "documents": {
                            "type": "string",
                            "enum": ["paragraph", "line"],
                            "description": "How a .txt corpus is cut into documents: at blank lines "
                            "(paragraph, the default) or one per line.",
                        },
                    },
                }
            },
            "application/json": {"schema": schemas.DatasetSampleCreate.model_json_schema()},
        },
    }
}


@router.get("", summary="List datasets")
def list_datasets(services: ServicesDep) -> schemas.DatasetList:
    items = services.datasets.list_datasets()
    return schemas.DatasetList(datasets=[schemas.Dataset.model_validate(d) for d in items])


@router.get("/{name}", summary="Show a dataset")
def get_dataset(name: Name, services: ServicesDep) -> schemas.Dataset:
    return schemas.Dataset.model_validate(services.datasets.get_dataset(name))


@router.get("/{name}/versions", summary="List a dataset's versions")
def list_versions(name: Name, services: ServicesDep) -> schemas.DatasetVersionList:
    items = services.datasets.list_versions(name)
    return schemas.DatasetVersionList(versions=[schemas.DatasetVersion.model_validate(v) for v in items])


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Create a dataset version from an upload (CSV, Parquet, JSONL, .txt) or a bundled sample",
    description="Multipart upload: `file` (CSV, Parquet, JSONL or a .txt corpus) and optional form "
    "fields `target`, `description`, `validation_fraction`, `seed`, and for text datasets "
    "`text_column` or `prompt_column` + `response_column`, and `documents` (.txt only). "
    'Or a JSON body `{"sample": "iris"}` (iris, wine, breast_cancer, digits, diabetes). The '
    "dataset is created on its first version. The same file with the same target, text and split "
    "options returns the existing version.",
    openapi_extra=_UPLOAD_BODY,
)
async def create_version(name: Name, request: Request, services: ServicesDep) -> schemas.DatasetVersion:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    datasets = services.datasets
    if content_type == "application/json":
        body = _sample_body(await request.body())
        # Parsing and statistics are CPU work: off the event loop, like the sync endpoints.
        version = await run_in_threadpool(
            datasets.create_sample_version,
            name,
            body.sample,
            validation_fraction=body.validation_fraction,
            seed=body.seed,
        )
        return schemas.DatasetVersion.model_validate(version)
    if content_type != "multipart/form-data":
        raise InvalidArgument(
            "send the dataset as multipart/form-data (field 'file': CSV, Parquet, JSONL or .txt) or a "
            f'JSON body {{"sample": ...}}; got content-type {content_type or "none"!r}',
            details={"field": "content-type", "value": content_type},
        )
    limit = datasets.max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _CHUNK:  # refuse before reading it all
        raise _too_large(limit)
    async with request.form(max_files=1, max_fields=16) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidArgument(
                "field 'file' is missing: attach the CSV, Parquet, JSONL or .txt file as multipart "
                "field 'file'",
                details={"field": "file"},
            )
        unknown = sorted(k for k in form if k not in ("file", *_FORM_FIELDS))
        if unknown:
            raise InvalidArgument(
                f"unknown form fields {unknown}; expected file, {', '.join(_FORM_FIELDS)}",
                details={"field": unknown[0], "expected": ["file", *_FORM_FIELDS]},
            )
        data = await _read_limited(file, limit)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        filename = file.filename or "data"
    version = await run_in_threadpool(
        datasets.create_version,
        name,
        data,
        filename=filename,
        target=fields.get("target") or None,
        description=fields.get("description", ""),
        validation_fraction=_number(fields, "validation_fraction", float, 0.2),
        seed=_number(fields, "seed", int, 0),
        text_column=fields.get("text_column") or None,
        prompt_column=fields.get("prompt_column") or None,
        response_column=fields.get("response_column") or None,
        documents=fields.get("documents") or None,
    )
    return schemas.DatasetVersion.model_validate(version)


@router.get(
    "/{name}/versions/{ref}", summary="Show a version (number or 'latest'): schema, statistics, split"
)
def get_version(name: Name, ref: str, services: ServicesDep) -> schemas.DatasetVersion:
    return schemas.DatasetVersion.model_validate(services.datasets.get_version(name, _version_ref(ref)))


@router.get(
    "/{name}/versions/{ref}/data",
    summary="Download a version's data file, as uploaded",
    response_class=Response,
    responses={200: {"content": {media: {} for media in _MEDIA_TYPES.values()}}},
)
def download_data(name: Name, ref: str, services: ServicesDep) -> Response:
    version = services.datasets.get_version(name, _version_ref(ref))
    data = services.datasets.load_data(version)
    return Response(
        data,
        media_type=_MEDIA_TYPES.get(version.format, "application/octet-stream"),
        headers={
            "content-disposition": f'attachment; filename="{name}-v{version.version}.'
            f'{_EXTENSIONS.get(version.format, version.format)}"'
        },
    )


def _version_ref(ref: str) -> int | None:
    checked = version_ref(ref, aliases=False)  # datasets have no aliases
    return None if checked == "latest" else int(checked)


def _sample_body(raw: bytes) -> schemas.DatasetSampleCreate:
    try:
        return schemas.DatasetSampleCreate.model_validate(orjson.loads(raw or b"{}"))
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"body is not valid JSON: {exc}", details={"field": "body"}) from None
    except ValidationError as exc:
        raise invalid_argument(exc, what="request") from None


def _number(fields: dict[str, str], name: str, kind: type[float] | type[int], default: float) -> Any:
    text = fields.get(name, "").strip()
    if not text:
        return kind(default)
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (isinstance(value, float) and not math.isfinite(value)):  # float() takes "nan"
        expected = "an integer" if kind is int else "a finite number"
        raise InvalidArgument(
            f"{name} must be {expected}; got {text!r}", details={"field": name, "value": text}
        ) from None
    return value


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"file is larger than the dataset limit of {limit} bytes (AIAAS_MAX_DATASET_BYTES)",
        details={"field": "file", "limit": limit},
    )


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await file.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
