"""``aiaas.Client``: everything the REST API and the inference server offer, typed."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Unpack

import httpx
import numpy as np
import orjson
from pydantic import BaseModel, ValidationError

from aiaas import schemas
from aiaas.config import load_settings
from aiaas.errors import DeadlineExceeded, InvalidArgument, Unavailable
from aiaas.formats import decode_tensors, encode_tensors, numpy_dtype, package_model, read_folder
from aiaas.sdk._http import INFERENCE_SERVER, raise_for_error, request, send
from aiaas.sdk.alerts import AlertMethods
from aiaas.sdk.monitoring import MonitoringMethods
from aiaas.translate import invalid_argument

__all__ = ["Client"]

Arrays = dict[str, np.ndarray[Any, Any]]
_Body = TypeVar("_Body", bound=BaseModel)
#: How often :meth:`Client.wait_until_served` asks the control plane for a load error.
_STATE_POLL_S = 0.25


class Client(MonitoringMethods, AlertMethods):
    """A client of a running aiaas (``aiaas up``).

    Args:
        url: the control plane, default ``AIAAS_CONTROL_PLANE_URL`` or ``http://127.0.0.1:8000``.
        api_key: sent as a bearer token, default ``AIAAS_API_KEY``.
        inference_url: the inference server, default ``AIAAS_INFERENCE_URL`` or else the URL
            the control plane reports (``GET /api/v1/health``), asked once, on first use.
        timeout: seconds per HTTP request.
        transport: an ``httpx`` transport for both servers instead of the network, e.g. one
            that calls an app in this process (how the in-process tests talk to the control
            plane); ``None``, the default, connects over HTTP.

    Any call raises :class:`~aiaas.errors.Unavailable` when its server does not answer,
    at once when nothing listens on its port ("cannot connect to the inference server at
    URL: connection refused; is it running? ...").

    Example (it needs a running platform, ``aiaas up``, so the docstring test skips it):
        >>> client = aiaas.Client("http://127.0.0.1:8000")  # doctest: +SKIP
        >>> v = client.register_model("iris", clf, example=X[:5])  # doctest: +SKIP
        >>> client.deploy("iris", model="iris", version=v.version)  # doctest: +SKIP
        >>> client.predict("iris", X[:2])["probabilities"]  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        inference_url: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        settings = load_settings()
        self.url = (url or settings.resolved_control_plane_url()).rstrip("/")
        self._inference_url = (inference_url or settings.inference_url or "").rstrip("/") or None
        self._default_inference_url = settings.resolved_inference_url()
        key = api_key or settings.api_key
        self._headers = {"authorization": f"Bearer {key}"} if key else {}
        self._timeout = timeout
        self._transport = transport
        self._api = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=self._headers, timeout=timeout, transport=transport
        )
        self._infer_http: httpx.Client | None = None
        self._signatures: dict[str, dict[str, str]] = {}

    @property
    def inference_url(self) -> str:
        """The inference server's URL: as given, else ``AIAAS_INFERENCE_URL``, else the control
        plane's answer (asked on first use, then kept).

        Raises:
            Unavailable: it had to be asked and the control plane does not answer.
        """
        if self._inference_url is None:
            self._inference_url = self._discover_inference_url()
        return self._inference_url

    def _discover_inference_url(self) -> str:
        try:
            health = self.health()
        except Unavailable as exc:
            raise Unavailable(
                f"{exc.message} (it was asked where the inference server listens; to call the "
                "inference server without it, give inference_url= or AIAAS_INFERENCE_URL)",
                details=exc.details,
            ) from None
        # A control plane older than the field: the inference server's default address.
        return (health.inference_url or self._default_inference_url).rstrip("/")

    @property
    def _infer(self) -> httpx.Client:
        if self._infer_http is None:
            self._infer_http = httpx.Client(
                base_url=self.inference_url,
                headers=self._headers,
                timeout=self._timeout,
                transport=self._transport,
            )
        return self._infer_http

    def close(self) -> None:
        self._api.close()
        if self._infer_http is not None:
            self._infer_http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- models and versions -------------------------------------------------------------

    def health(self) -> schemas.Health:
        return schemas.Health.model_validate_json(self._get("/health").content)

    def list_models(self) -> list[schemas.Model]:
        return schemas.ModelList.model_validate_json(self._get("/models").content).models

    def get_model(self, name: str) -> schemas.Model:
        return schemas.Model.model_validate_json(self._get(f"/models/{name}").content)

    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> schemas.Model:
        body = schemas.ModelCreate(name=name, description=description, tags=dict(tags or {}))
        return schemas.Model.model_validate_json(self._send("POST", "/models", body).content)

    def delete_model(self, name: str) -> None:
        request(self._api, "DELETE", f"/models/{name}")

    def register_model(
        self,
        name: str,
        model: Any,
        *,
        example: Any = None,
        metrics: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        description: str | None = None,
        source: str | None = None,
        parent_version: int | None = None,
        flavor: str | None = None,
        classes: Sequence[Any] | None = None,
        reference_dataset: str | None = None,
    ) -> schemas.ModelVersion:
        """Register ``model`` as the next version of ``name`` (the model is created if new).

        ``model`` is a fitted scikit-learn estimator or pipeline, a PyTorch ``nn.Module``,
        ONNX bytes or a path to an ``.onnx`` file. It is converted to ONNX here, on the
        client, so only the ONNX graph travels: nothing is ever unpickled on the server.
        ``example`` (a few input rows) is needed to trace scikit-learn and PyTorch models
        and is stored with the version. A classifier answers with its own labels: a
        scikit-learn one's ``classes_``, or for a PyTorch module the ``classes`` given here
        (the label of each output column; a ``label`` output is added).

        ``model`` may also be the path of a Hugging Face model folder (``config.json``,
        ``*.safetensors``, tokenizer files; a causal language model or a sentence-transformers
        embedding model, saved with ``save_pretrained``/``save``). Its files are uploaded as
        they are and checked by the server; ``flavor`` (``hf-causal-lm`` or ``hf-embedding``)
        is read from the folder unless given.

        ``reference_dataset`` (``"name"`` or ``"name:version"`` of a registered dataset) is what
        the version's drift is measured against: its feature columns and the model's answers on
        them. Without it, the version's first traffic becomes its reference.
        """
        if isinstance(model, str | Path) and Path(model).is_dir():
            return self._register_folder(
                name,
                Path(model),
                flavor=flavor,
                metrics=metrics,
                params=params,
                description=description,
                source=source,
                parent_version=parent_version,
            )
        package = package_model(model, example, classes=classes)
        metadata = schemas.VersionMetadata(
            flavor=package.flavor,
            example=encode_tensors(package.example),
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            description=description or "",
            source=source or (str(model) if isinstance(model, str | Path) else ""),
            parent_version=parent_version,
            reference_dataset=reference_dataset,
        )
        response = request(
            self._api,
            "POST",
            f"/models/{name}/versions",
            files={"file": (f"{name}.onnx", package.onnx, "application/octet-stream")},
            data={"metadata": metadata.model_dump_json()},
        )
        return schemas.ModelVersion.model_validate_json(response.content)

    def _register_folder(
        self,
        name: str,
        folder: Path,
        *,
        flavor: str | None,
        metrics: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        description: str | None,
        source: str | None,
        parent_version: int | None,
    ) -> schemas.ModelVersion:
        files = read_folder(folder)
        metadata = schemas.VersionMetadata(
            flavor=flavor or "onnx",  # the default: the server reads the flavor from the folder
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            description=description or "",
            source=source or str(folder),
            parent_version=parent_version,
        )
        parts = [("files", (path, data, "application/octet-stream")) for path, data in files.items()]
        response = request(
            self._api,
            "POST",
            f"/models/{name}/versions",
            files=parts,
            data={"metadata": metadata.model_dump_json()},
        )
        return schemas.ModelVersion.model_validate_json(response.content)

    def list_versions(self, name: str) -> list[schemas.ModelVersion]:
        return schemas.ModelVersionList.model_validate_json(
            self._get(f"/models/{name}/versions").content
        ).versions

    def get_version(self, name: str, ref: int | str = "latest") -> schemas.ModelVersion:
        """A version by number, alias or ``"latest"``."""
        return schemas.ModelVersion.model_validate_json(self._get(f"/models/{name}/versions/{ref}").content)

    def download_artifact(self, name: str, ref: int | str = "latest") -> bytes:
        """The version's ONNX file, as stored."""
        return self._get(f"/models/{name}/versions/{ref}/artifact").content

    def archive_version(self, name: str, version: int) -> schemas.ModelVersion:
        response = request(self._api, "POST", f"/models/{name}/versions/{version}/archive")
        return schemas.ModelVersion.model_validate_json(response.content)

    def delete_version(self, name: str, version: int) -> None:
        request(self._api, "DELETE", f"/models/{name}/versions/{version}")

    # -- aliases and compare ---------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> schemas.Alias:
        """Point ``alias`` at ``version``: promote, or roll back by pointing it back."""
        body = schemas.AliasSet(version=version)
        return schemas.Alias.model_validate_json(
            self._send("PUT", f"/models/{name}/aliases/{alias}", body).content
        )

    def list_aliases(self, name: str) -> list[schemas.Alias]:
        return schemas.AliasList.model_validate_json(self._get(f"/models/{name}/aliases").content).aliases

    def delete_alias(self, name: str, alias: str) -> None:
        request(self._api, "DELETE", f"/models/{name}/aliases/{alias}")

    def compare(self, name: str, v1: int | str, v2: int | str) -> schemas.Comparison:
        response = self._get(f"/models/{name}/compare", params={"a": str(v1), "b": str(v2)})
        return schemas.Comparison.model_validate_json(response.content)

    # -- deployments -----------------------------------------------------------------------

    def deploy(
        self,
        name: str,
        *,
        model: str,
        version: int | None = None,
        alias: str | None = None,
        traffic: Sequence[schemas.TrafficRoute | Mapping[str, Any]] | None = None,
        shadow: schemas.RouteRef | Mapping[str, Any] | None = None,
        reference_dataset: str | None = None,
        **settings: Unpack[schemas.SettingValues],
    ) -> schemas.Deployment:
        """Serve ``model`` under ``name`` at a pinned ``version`` or following ``alias``
        (neither: the latest version). Use :meth:`wait_until_served` to wait for the
        inference server to pick it up.

        Args:
            traffic: canary routes such as ``[{"version": 3, "weight": 10}]``; the primary
                gets 100 minus the sum of their weights.
            shadow: ``{"version": N}`` or ``{"alias": A}``: gets a copy of every request.
            reference_dataset: ``"name"`` or ``"name:version"`` of a dataset the deployed
                version's drift reference is built from (replacing the one it has).
            settings: any serving setting of :class:`aiaas.schemas.DeploymentSettings`, by
                name (left out: the default), e.g. ``batching={"enabled": True}``,
                ``max_queue_size=256``, ``timeout_s=5``, ``min_replicas=0``,
                ``max_replicas=3``, ``prediction_log={"sample_rate": 0.5}``,
                ``drift={"psi_threshold": 0.3}``. Their defaults, ranges and units are in
                the README's table of deployment settings.

        Raises:
            InvalidArgument: a value out of range (checked here first, then by the server).
        """
        body = _body(
            schemas.DeploymentCreate,
            name=name,
            model=model,
            version=version,
            alias=alias,
            traffic=traffic,
            shadow=shadow,
            reference_dataset=reference_dataset,
            **settings,
        )
        return schemas.Deployment.model_validate_json(self._send("POST", "/deployments", body).content)

    def update_deployment(
        self,
        name: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        traffic: Sequence[schemas.TrafficRoute | Mapping[str, Any]] | None = None,
        shadow: schemas.RouteRef | Mapping[str, Any] | None = None,
        **settings: Unpack[schemas.SettingValues],
    ) -> schemas.Deployment:
        """Change a deployment; arguments left as ``None`` keep their value.

        ``traffic=[]`` removes the canary routes, ``shadow={}`` stops shadowing and
        ``batching={}`` (any nested setting given as ``{}``) restores its defaults. With no
        argument at all, the deployment is pinned to the latest version. Arguments are as
        for :meth:`deploy`.
        """
        body = _body(
            schemas.DeploymentUpdate, version=version, alias=alias, traffic=traffic, shadow=shadow, **settings
        )
        return schemas.Deployment.model_validate_json(
            self._send("PATCH", f"/deployments/{name}", body).content
        )

    def list_deployments(self) -> list[schemas.Deployment]:
        return schemas.DeploymentList.model_validate_json(self._get("/deployments").content).deployments

    def get_deployment(self, name: str) -> schemas.Deployment:
        return schemas.Deployment.model_validate_json(self._get(f"/deployments/{name}").content)

    def scaling_events(self, name: str, *, limit: int = 50) -> list[schemas.ScalingEvent]:
        """The inference server's autoscaling decisions for deployment ``name``, newest first."""
        response = self._get(f"/deployments/{name}/scaling-events", params={"limit": str(limit)})
        return schemas.ScalingEventList.model_validate_json(response.content).events

    def delete_deployment(self, name: str) -> None:
        request(self._api, "DELETE", f"/deployments/{name}")

    # -- datasets --------------------------------------------------------------------------

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
            body = _body(
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

    def datasets(self) -> list[schemas.Dataset]:
        return schemas.DatasetList.model_validate_json(self._get("/datasets").content).datasets

    def dataset(self, name: str) -> schemas.Dataset:
        return schemas.Dataset.model_validate_json(self._get(f"/datasets/{name}").content)

    def dataset_versions(self, name: str) -> list[schemas.DatasetVersion]:
        return schemas.DatasetVersionList.model_validate_json(
            self._get(f"/datasets/{name}/versions").content
        ).versions

    def dataset_version(self, name: str, version: int | None = None) -> schemas.DatasetVersion:
        """A version with its schema, statistics and split; ``None`` is the latest."""
        ref = "latest" if version is None else str(version)
        return schemas.DatasetVersion.model_validate_json(
            self._get(f"/datasets/{name}/versions/{ref}").content
        )

    def download_dataset(self, name: str, version: int | None = None) -> bytes:
        """The version's data file, as uploaded."""
        ref = "latest" if version is None else str(version)
        return self._get(f"/datasets/{name}/versions/{ref}/data").content

    # -- training jobs ---------------------------------------------------------------------

    def submit_job(self, spec: schemas.JobSpec | Mapping[str, Any] | str | Path) -> schemas.Job:
        """Queue a training job; ``spec`` is a :class:`~aiaas.schemas.JobSpec`, a mapping, the
        text of a YAML/JSON spec, or the path of a spec file. It is validated here first, so a
        bad field is reported before anything is sent.

        The job returned has ``registration``: the model its result is registered under (when
        the spec has no ``register_as``, a derived name) and the versions that model holds.
        """
        if isinstance(spec, Path):
            spec = schemas.JobSpec.from_text(spec.read_text(), source=str(spec))
        elif isinstance(spec, str):
            spec = schemas.JobSpec.from_text(spec)
        elif not isinstance(spec, schemas.JobSpec):
            spec = _body(schemas.JobSpec, **dict(spec))
        # Only the fields written: the server checks them against the family (a default
        # optimizer is not one the author gave to a random forest) and fills in the rest.
        response = request(
            self._api,
            "POST",
            "/jobs",
            content=spec.model_dump_json(exclude_unset=True),
            headers={"content-type": "application/json"},
        )
        return schemas.Job.model_validate_json(response.content)

    def list_jobs(self, status: str | None = None, *, limit: int = 100) -> list[schemas.Job]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        return schemas.JobList.model_validate_json(self._get("/jobs", params=params).content).jobs

    def get_job(self, job_id: int) -> schemas.Job:
        return schemas.Job.model_validate_json(self._get(f"/jobs/{job_id}").content)

    def job_metrics(self, job_id: int) -> list[schemas.JobMetrics]:
        return schemas.JobMetricsList.model_validate_json(
            self._get(f"/jobs/{job_id}/metrics").content
        ).metrics

    def job_logs(self, job_id: int, *, after: int = 0, limit: int = 1000) -> schemas.JobLogs:
        """Log lines after ``after``; pass the returned ``next_after`` to get only new ones."""
        response = self._get(f"/jobs/{job_id}/logs", params={"after": after, "limit": limit})
        return schemas.JobLogs.model_validate_json(response.content)

    def cancel_job(self, job_id: int) -> schemas.Job:
        return schemas.Job.model_validate_json(request(self._api, "POST", f"/jobs/{job_id}/cancel").content)

    def wait_for_job(self, job_id: int, *, timeout: float | None = None, poll_s: float = 0.25) -> schemas.Job:
        """Block until the job has ended (succeeded, failed or cancelled); returns it.

        Raises:
            DeadlineExceeded: ``timeout`` seconds passed first (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded(
                    f"job {job_id} was still {job.status} after {timeout:.0f}s",
                    details={"job": job_id, "status": job.status},
                )
            time.sleep(poll_s)

    # -- optimization ----------------------------------------------------------------------

    def optimize(
        self,
        model: str,
        version: int | str = "latest",
        method: str = "dynamic_int8",
        *,
        settings: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> schemas.Job:
        """Queue an optimization of a registered version; returns the job (follow it with
        :meth:`wait_for_job`; on success ``result_version`` is the new version).

        Args:
            model: the registered model.
            version: its version number, an alias or "latest".
            method: ``dynamic_int8``, ``static_int8``, ``fp16``, ``prune``, ``distill`` or ``auto``.
            settings: the method's settings (see :class:`~aiaas.schemas.PruneSettings` and the
                others), e.g. ``{"structured": True, "sparsity": 0.5}``; for ``auto``, a mapping
                from method name to its settings.
            fields: the other fields of :class:`~aiaas.schemas.OptimizeSpec` (``dataset``,
                ``register_as``, ``alias``, ``max_metric_drop``, ``candidates``, ``latency_runs``).

        Example::

            job = client.optimize("digits-cnn", 1, "prune", settings={"sparsity": 0.5})
            job = client.wait_for_job(job.id)
            print(client.get_version("digits-cnn", job.result_version).lineage["optimization"])
        """
        body: dict[str, Any] = {"model": model, "version": version, "method": method, **fields}
        if settings:
            if method == "auto":
                body.update(dict(settings))
            else:
                body[method] = dict(settings)
        spec = _body(schemas.OptimizeSpec, **body)
        response = request(
            self._api,
            "POST",
            f"/models/{model}/versions/{version}/optimize",
            content=spec.model_dump_json(exclude_unset=True, exclude={"model", "version"}),
            headers={"content-type": "application/json"},
        )
        return schemas.Job.model_validate_json(response.content)

    # -- inference -------------------------------------------------------------------------

    def served_version(self, deployment: str) -> int | None:
        """The version the inference server serves for ``deployment`` now (None: not yet).

        Raises:
            Unavailable: the inference server does not answer at all (a wrong URL or port
                is reported at once, not taken for "not served yet").
        """
        response = send(self._infer, "GET", f"/v2/models/{deployment}", server=INFERENCE_SERVER)
        if response.status_code in (404, 503):  # not routed yet, or still loading
            return None
        raise_for_error(response)
        versions = response.json().get("versions") or []
        return int(versions[0]) if versions else None

    def model_stats(self, deployment: str, version: int | None = None) -> list[dict[str, Any]]:
        """The inference server's statistics of ``deployment`` (``GET /v2/models/NAME/stats``,
        the V2 statistics extension): one entry per version it has served since it started,
        with request counts, queue and compute times, and the batch sizes it ran."""
        path = f"/v2/models/{deployment}" + (f"/versions/{version}" if version is not None else "") + "/stats"
        entries: list[dict[str, Any]] = request(self._infer, "GET", path).json()["model_stats"]
        return entries

    def wait_until_served(self, deployment: str, version: int | None = None, *, timeout: float = 60.0) -> int:
        """Block until the inference server serves ``deployment`` (at ``version``, if given).

        Deployments and alias moves are reconciled asynchronously (within a fraction of a
        second); this is how a script knows that its next request hits the new version.

        Raises:
            Unavailable: the inference server reported that it cannot load ``version`` (a
                corrupted or missing artifact, a model that does not load), at once and with
                its reason; or ``timeout`` seconds passed first.
        """
        if version is None:
            version = self.get_deployment(deployment).serving_version
        deadline = time.monotonic() + timeout
        check_at = 0.0
        while True:
            served = self.served_version(deployment)
            if served == version:
                self._signatures.pop(deployment, None)
                return version
            if time.monotonic() >= check_at:
                check_at = time.monotonic() + _STATE_POLL_S
                self._raise_if_refused(deployment, version, served)
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"deployment {deployment!r} was not serving version {version} after {timeout:.0f}s "
                    f"(serving: {served}); check the inference server's log",
                    details={"deployment": deployment, "version": version, "served": served},
                )
            time.sleep(0.05)

    def _raise_if_refused(self, deployment: str, version: int, served: int | None) -> None:
        """Fail fast when the inference server reported it could not load ``version``."""
        try:
            state = self.get_deployment(deployment).served
        except Unavailable:
            return  # the control plane is out of reach: keep waiting on the inference server
        if state is None or state.error is None or state.desired_version != version:
            return
        keeps = f"; it keeps serving version {state.version}" if state.version is not None else ""
        raise Unavailable(
            f"the inference server cannot serve version {version} of deployment {deployment!r}: "
            f"{state.error}{keeps}",
            details={"deployment": deployment, "version": version, "served": served, "error": state.error},
        )

    def predict(
        self,
        deployment: str,
        inputs: Any,
        *,
        version: int | None = None,
        outputs: list[str] | None = None,
    ) -> Arrays:
        """Run ``deployment`` on ``inputs`` over the V2 protocol; returns output name → array.

        ``inputs`` is an array-like (models with one input) or a mapping input name →
        array-like; values are cast to the datatypes of the model's signature.
        """
        body: dict[str, Any] = {"inputs": self._v2_tensors(deployment, inputs)}
        if outputs:
            body["outputs"] = [{"name": o} for o in outputs]
        response = self.infer_json(deployment, body, protocol="v2", version=version)
        return decode_tensors(response["outputs"], field="outputs")

    def explain(
        self,
        deployment: str,
        inputs: Any,
        *,
        version: int | None = None,
        max_evals: int | None = None,
        seed: int | None = None,
    ) -> schemas.Explanation:
        """Feature attributions of ``inputs`` (rows, as for :meth:`predict`) from the
        deployment's primary version, or ``version``.

        ``max_evals`` (model evaluations per row) and ``seed`` (the permutations drawn) are
        the explainer's knobs; the server's defaults when ``None``. Per row and output column
        (each class of a classifier), the attributions add up to the prediction minus the base
        value (see ``docs/explain.md``).
        """
        body: dict[str, Any] = {"inputs": self._v2_tensors(deployment, inputs)}
        parameters = {k: v for k, v in (("max_evals", max_evals), ("seed", seed)) if v is not None}
        if parameters:
            body["parameters"] = parameters
        answer = self.explain_json(deployment, body, protocol="v2", version=version)
        return schemas.Explanation.model_validate(answer)

    def explain_json(
        self, deployment: str, body: Mapping[str, Any], *, protocol: str = "v2", version: int | None = None
    ) -> dict[str, Any]:
        """Send a ready-made V2 or V1 body to the explain endpoint (``/v2/models/{name}/explain``
        or ``/v1/models/{name}:explain``) and return the answer, as ``aiaas explain`` does."""
        return self._inference(deployment, body, protocol, version, explain=True)

    def _v2_tensors(self, deployment: str, inputs: Any) -> list[dict[str, Any]]:
        """``inputs`` as V2 tensors, cast to the datatypes of the deployment's signature."""
        datatypes = self._input_datatypes(deployment)
        arrays = _named_inputs(inputs, list(datatypes))
        tensors = []
        for name, array in arrays.items():
            datatype = datatypes.get(name)
            if datatype is None:
                raise InvalidArgument(
                    f"unknown input {name!r}; {deployment!r} takes {list(datatypes)}",
                    details={"field": name, "expected": list(datatypes)},
                )
            if datatype != "BYTES":
                array = np.ascontiguousarray(array, dtype=numpy_dtype(datatype))
                data: Any = array.reshape(-1)
            else:
                data = [str(v) for v in array.reshape(-1)]
            tensors.append({"name": name, "datatype": datatype, "shape": list(array.shape), "data": data})
        return tensors

    def infer_json(
        self, deployment: str, body: Mapping[str, Any], *, protocol: str = "v2", version: int | None = None
    ) -> dict[str, Any]:
        """Send a ready-made V2 (``{"inputs": [tensors]}``) or V1 (``{"instances": [...]}``)
        request body and return the response body, as a script or ``aiaas predict`` would.

        ``version`` calls that version of the deployment's model instead of what the
        deployment routes to, in either protocol (V1 as TensorFlow Serving spells it:
        ``/v1/models/{name}/versions/{n}:predict``).
        """
        return self._inference(deployment, body, protocol, version, explain=False)

    def _inference(
        self, deployment: str, body: Mapping[str, Any], protocol: str, version: int | None, *, explain: bool
    ) -> dict[str, Any]:
        pinned = f"/versions/{version}" if version is not None else ""
        if protocol == "v2":
            path = f"/v2/models/{deployment}{pinned}/{'explain' if explain else 'infer'}"
        elif protocol == "v1":
            path = f"/v1/models/{deployment}{pinned}:{'explain' if explain else 'predict'}"
        else:
            raise InvalidArgument(
                f"protocol must be 'v1' or 'v2'; got {protocol!r}", details={"field": "protocol"}
            )
        response = request(
            self._infer,
            "POST",
            path,
            server=INFERENCE_SERVER,
            content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            headers={"content-type": "application/json"},
        )
        result: dict[str, Any] = orjson.loads(response.content)
        return result

    # -- helpers -----------------------------------------------------------------------------

    def _input_datatypes(self, deployment: str) -> dict[str, str]:
        cached = self._signatures.get(deployment)
        if cached is None:
            meta = request(self._infer, "GET", f"/v2/models/{deployment}", server=INFERENCE_SERVER).json()
            cached = {t["name"]: t["datatype"] for t in meta["inputs"]}
            self._signatures[deployment] = cached
        return cached

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:
        return request(self._api, "GET", path, **kwargs)

    def _send(self, method: str, path: str, body: Any) -> httpx.Response:
        return request(
            self._api,
            method,
            path,
            content=body.model_dump_json(exclude_none=method == "PATCH"),
            headers={"content-type": "application/json"},
        )


def _body(schema: type[_Body], /, **fields: Any) -> _Body:
    """A request body built from plain values or schema objects; a value the schema refuses
    becomes :class:`InvalidArgument` naming the field, as the server would answer it."""
    values = {
        k: v.model_dump(exclude_unset=True) if isinstance(v, BaseModel) else v for k, v in fields.items()
    }
    if isinstance(values.get("traffic"), Sequence):
        values["traffic"] = [
            r.model_dump(exclude_unset=True) if isinstance(r, BaseModel) else r for r in values["traffic"]
        ]
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        raise invalid_argument(exc, what="request") from None


def _named_inputs(inputs: Any, names: list[str]) -> Arrays:
    if isinstance(inputs, Mapping):
        return {str(k): _as_array(v) for k, v in inputs.items()}
    if len(names) != 1:
        raise InvalidArgument(
            f"this model takes several inputs {names}: pass a mapping from input name to array",
            details={"field": "inputs", "expected": names},
        )
    return {names[0]: _as_array(inputs)}


def _as_array(value: Any) -> np.ndarray[Any, Any]:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)
