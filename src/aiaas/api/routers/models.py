"""``/api/v1/models``: models, their versions (upload of ``.onnx`` files), aliases and compare."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from typing import Annotated

import orjson
from fastapi import APIRouter, File, Form, Response, UploadFile, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from aiaas import schemas
from aiaas.api.deps import Services, ServicesDep
from aiaas.api.params import AliasName, Name, VersionNumber, version_ref
from aiaas.errors import AiaasError, InvalidArgument, PayloadTooLarge
from aiaas.formats import (
    FLAVORS,
    FOLDER_FLAVORS,
    FolderPackage,
    ModelPackage,
    check_file_name,
    decode_tensors,
    package_folder,
    package_model,
)
from aiaas.registry import ModelVersion, check_reference_dataset, dataset_reference
from aiaas.translate import invalid_argument

__all__ = ["router"]

router = APIRouter(prefix="/models", tags=["models"])

_CHUNK = 1024 * 1024


@router.get("", summary="List models")
def list_models(services: ServicesDep) -> schemas.ModelList:
    models = services.registry.list_models()
    return schemas.ModelList(models=[schemas.Model.model_validate(m) for m in models])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a model (versions may also create it)")
def create_model(body: schemas.ModelCreate, services: ServicesDep) -> schemas.Model:
    model = services.registry.create_model(body.name, description=body.description, tags=body.tags)
    return schemas.Model.model_validate(model)


@router.get("/{name}", summary="Show a model")
def get_model(name: Name, services: ServicesDep) -> schemas.Model:
    return schemas.Model.model_validate(services.registry.get_model(name))


@router.patch("/{name}", summary="Change a model's description or tags")
def update_model(name: Name, body: schemas.ModelUpdate, services: ServicesDep) -> schemas.Model:
    model = services.registry.update_model(name, description=body.description, tags=body.tags)
    return schemas.Model.model_validate(model)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a model and its versions")
def delete_model(name: Name, services: ServicesDep) -> Response:
    services.registry.delete_model(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/versions", summary="List a model's versions")
def list_versions(name: Name, services: ServicesDep) -> schemas.ModelVersionList:
    versions = services.registry.list_versions(name)
    return schemas.ModelVersionList(versions=[schemas.ModelVersion.model_validate(v) for v in versions])


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Register a new version from an .onnx file or a model folder",
    description="Multipart upload: `file` is the ONNX model, `metadata` a JSON object "
    "(flavor, example as V2 tensors, metrics, params, description, source, parent_version, "
    "reference_dataset: a dataset its drift reference is built from). "
    "A Hugging Face model folder is sent instead as several `files` parts, each part's filename "
    "its path in the folder (config.json, model.safetensors, tokenizer.json, 1_Pooling/config.json); "
    "its flavor (hf-causal-lm or hf-embedding) is read from the folder unless metadata gives it. "
    "Pickle weights (.bin, .pt) and code files are refused. The model is created on its first version. "
    "An ONNX file must be self-contained: a tensor whose data lives in an external file is refused "
    "(400, naming the tensor).",
    responses={400: {"description": "Not a valid model"}, 413: {"description": "Larger than the limit"}},
)
async def register_version(
    name: Name,
    services: ServicesDep,
    file: Annotated[UploadFile | None, File(description="The model as ONNX.")] = None,
    files: Annotated[
        list[UploadFile] | None,
        File(description="The files of a model folder, each part's filename its relative path."),
    ] = None,
    metadata: Annotated[str, Form(description="JSON object, see VersionMetadata.")] = "{}",
) -> schemas.ModelVersion:
    limit = services.settings.max_upload_bytes
    if files:
        if file is not None:
            raise InvalidArgument(
                "give either file (one .onnx) or files (a model folder), not both", details={"field": "file"}
            )
        meta = _parse_metadata(metadata, folder=True)
        folder = await _read_folder(files, limit)
        # Checking the model (ONNX Runtime loads it) and writing the database block: off the
        # event loop, which keeps answering every other request meanwhile.
        version = await run_in_threadpool(_register_folder, services, name, folder, meta)
    else:
        if file is None:
            raise InvalidArgument(
                "file is required: upload an .onnx model as `file`, or a model folder as `files` parts",
                details={"field": "file"},
            )
        data = await _read_limited(file, limit)
        meta = _parse_metadata(metadata)
        version = await run_in_threadpool(_register_onnx, services, name, data, meta, file.filename or "")
    return schemas.ModelVersion.model_validate(version)


def _register_folder(
    services: Services, name: str, folder: dict[str, bytes], meta: schemas.VersionMetadata
) -> ModelVersion:
    flavor = meta.flavor if meta.flavor in FOLDER_FLAVORS else None
    package = package_folder(folder, flavor)
    return _register(services, name, package, meta, meta.source or "folder upload")


def _register_onnx(
    services: Services, name: str, data: bytes, meta: schemas.VersionMetadata, filename: str
) -> ModelVersion:
    example = decode_tensors(meta.example, field="example") if meta.example else None
    package = dataclasses.replace(package_model(data, example), flavor=meta.flavor)
    return _register(services, name, package, meta, meta.source or filename)


def _register(
    services: Services,
    name: str,
    package: ModelPackage | FolderPackage,
    meta: schemas.VersionMetadata,
    source: str,
) -> ModelVersion:
    if meta.reference_dataset is not None:  # an unknown dataset is refused before registering
        check_reference_dataset(services.datasets, meta.reference_dataset)
    version = services.registry.register_version(
        name,
        package,
        metrics=meta.metrics,
        params=meta.params,
        description=meta.description,
        source=source,
        parent_version=meta.parent_version,
    )
    if meta.reference_dataset is not None:
        try:
            dataset_reference(
                services.registry, services.datasets, name, version.version, meta.reference_dataset
            )
        except AiaasError:  # a dataset that does not fit refuses the whole registration
            services.registry.delete_version(name, version.version)
            raise
    return version


@router.get("/{name}/versions/{version}", summary="Show a version (by number, alias or 'latest')")
def get_version(name: Name, version: str, services: ServicesDep) -> schemas.ModelVersion:
    return schemas.ModelVersion.model_validate(services.registry.get_version(name, version_ref(version)))


@router.get(
    "/{name}/versions/{ref}/artifact",
    summary="Download a version's ONNX file (a model folder as a tar archive)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}, "application/x-tar": {}}}},
)
def download_artifact(name: Name, ref: str, services: ServicesDep) -> Response:
    version = services.registry.get_version(name, version_ref(ref))
    if version.flavor in FOLDER_FLAVORS:
        return Response(
            _tar(services.registry.load_files(version)),
            media_type="application/x-tar",
            headers={"content-disposition": f'attachment; filename="{name}-v{version.version}.tar"'},
        )
    data = services.registry.load_artifact(version)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"content-disposition": f'attachment; filename="{name}-v{version.version}.onnx"'},
    )


@router.post("/{name}/versions/{version}/archive", summary="Archive a version (refused while deployed)")
def archive_version(name: Name, version: VersionNumber, services: ServicesDep) -> schemas.ModelVersion:
    return schemas.ModelVersion.model_validate(services.registry.archive_version(name, version))


@router.delete(
    "/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a version (refused while deployed or aliased)",
)
def delete_version(name: Name, version: VersionNumber, services: ServicesDep) -> Response:
    services.registry.delete_version(name, version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/aliases", summary="List a model's aliases")
def list_aliases(name: Name, services: ServicesDep) -> schemas.AliasList:
    aliases = services.registry.list_aliases(name)
    return schemas.AliasList(aliases=[schemas.Alias.model_validate(a) for a in aliases])


@router.put(
    "/{name}/aliases/{alias}",
    summary="Point an alias at a version",
    description="Moving an alias switches every deployment that follows it; moving it back is a rollback.",
)
def set_alias(name: Name, alias: AliasName, body: schemas.AliasSet, services: ServicesDep) -> schemas.Alias:
    return schemas.Alias.model_validate(services.registry.set_alias(name, alias, body.version))


@router.delete("/{name}/aliases/{alias}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an alias")
def delete_alias(name: Name, alias: AliasName, services: ServicesDep) -> Response:
    services.registry.delete_alias(name, alias)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/compare", summary="Compare two versions")
def compare(name: Name, a: str, b: str, services: ServicesDep) -> schemas.Comparison:
    comparison = services.registry.compare(name, version_ref(a, field="a"), version_ref(b, field="b"))
    return schemas.Comparison.model_validate(comparison)


async def _read_limited(
    file: UploadFile, limit: int, *, field: str = "file", empty_ok: bool = False
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await file.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"{field} is larger than the upload limit of {limit} bytes (AIAAS_MAX_UPLOAD_BYTES)"
                if field == "file"
                else f"{field} takes the model folder past the upload limit (AIAAS_MAX_UPLOAD_BYTES)",
                details={"field": field, "limit": limit},
            )
        chunks.append(chunk)
    if not size and not empty_ok:
        raise InvalidArgument("file is empty: upload an .onnx model", details={"field": "file"})
    return b"".join(chunks)


async def _read_folder(files: list[UploadFile], limit: int) -> dict[str, bytes]:
    """The uploaded parts by relative path: each named, once, and all within ``limit`` bytes."""
    out: dict[str, bytes] = {}
    total = 0
    for part in files:
        path = check_file_name(part.filename or "")
        if path in out:
            raise InvalidArgument(
                f"files[{path!r}] is given twice", details={"field": "files", "value": path}
            )
        data = await _read_limited(part, limit - total, field=f"files[{path!r}]", empty_ok=True)
        total += len(data)
        out[path] = data
    return out


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _parse_metadata(text: str, *, folder: bool = False) -> schemas.VersionMetadata:
    try:
        meta = schemas.VersionMetadata.model_validate(orjson.loads(text or "{}"))
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"metadata is not valid JSON: {exc}", details={"field": "metadata"}) from None
    except ValidationError as exc:
        raise invalid_argument(exc, what="metadata", prefix="metadata", default_field="metadata") from None
    if folder:
        if meta.flavor not in (*FOLDER_FLAVORS, "onnx"):  # "onnx", the default: read it from the folder
            raise InvalidArgument(
                f"metadata.flavor of a model folder must be one of {list(FOLDER_FLAVORS)}; "
                f"got {meta.flavor!r}",
                details={"field": "metadata.flavor", "expected": list(FOLDER_FLAVORS)},
            )
    elif meta.flavor not in FLAVORS:
        raise InvalidArgument(
            f"metadata.flavor must be one of {list(FLAVORS)}; got {meta.flavor!r}",
            details={"field": "metadata.flavor", "expected": list(FLAVORS)},
        )
    return meta
