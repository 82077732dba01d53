"""``aiaas.Client``: everything the REST API and the inference server offer, typed."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

import httpx

from aiaas import schemas
from aiaas.config import load_settings
from aiaas.entities.projects import PROJECT_HEADER
from aiaas.errors import InvalidArgument, Unavailable
from aiaas.formats import encode_tensors, package_model, read_folder
from aiaas.sdk._http import request, request_body
from aiaas.sdk.alerts import AlertMethods
from aiaas.sdk.audit import AuditMethods
from aiaas.sdk.datasets import DatasetMethods
from aiaas.sdk.inference import InferenceMethods
from aiaas.sdk.jobs import JobMethods
from aiaas.sdk.keys import KeyMethods, local_api_key
from aiaas.sdk.monitoring import MonitoringMethods
from aiaas.sdk.retraining import RetrainingMethods
from aiaas.sdk.rollouts import RolloutMethods
from aiaas.tls import client_context

__all__ = ["Client"]


class Client(
    DatasetMethods,
    JobMethods,
    InferenceMethods,
    MonitoringMethods,
    AlertMethods,
    AuditMethods,
    RolloutMethods,
    RetrainingMethods,
    KeyMethods,
):
    """A client of a running aiaas (``aiaas up``).

    Args:
        url: the control plane, default ``AIAAS_CONTROL_PLANE_URL`` or ``http://127.0.0.1:8000``.
        api_key: sent as a bearer token to both servers; default ``AIAAS_API_KEY``, else the
            admin key file the control plane's first start wrote (``<AIAAS_HOME>/admin.key``).
        inference_url: the inference server, default ``AIAAS_INFERENCE_URL`` or else the URL
            the control plane reports (``GET /api/v1/health``), asked once, on first use.
        project: the project every call works in (models, datasets, jobs, deployments and
            alerts are looked up in it; inference addresses its deployments), sent as the
            ``X-Aiaas-Project`` header; default ``AIAAS_PROJECT``, else the server's (``default``).
        timeout: seconds per HTTP request.
        verify: how the servers' TLS certificates are checked (``https://`` URLs): the path of a
            PEM CA bundle to trust instead of the system's CAs, or an ``ssl.SSLContext``;
            default ``AIAAS_TLS_CA_FILE``, else the system's trusted CAs. Checking is never
            off: a certificate that cannot be verified raises
            :class:`~aiaas.errors.Unavailable` naming this setting.
        transport: an ``httpx`` transport for both servers instead of the network, e.g. one
            that calls an app in this process (how the in-process tests talk to the control
            plane); ``None``, the default, connects over HTTP.

    Any call raises :class:`~aiaas.errors.Unavailable` when its server does not answer,
    at once when nothing listens on its port ("cannot connect to the inference server at
    URL: connection refused; is it running? ...").

    Names, one convention across the mixins: ``list_X()`` for a collection and ``get_X(...)``
    for one item of it (``list_datasets``, ``get_dataset_version``, ``list_alert_rules``...);
    ``create_``/``update_``/``delete_`` for changes; actions and reports are named for what
    they do (``deploy``, ``predict``, ``explain``, ``optimize``, ``silence``, and the
    monitoring reports ``predictions``, ``feedback``, ``performance``, ``drift``,
    ``metric_series``, ``job_logs``, ``scaling_events``). The names from before the
    convention (``datasets()``, ``dataset()``, ``alert_rules()``, ``alerts()``...) still work
    for one release and warn with a ``DeprecationWarning`` naming their replacement.

    Time: a client-side wait takes ``timeout`` (seconds, as in ``httpx``) and, where the
    caller sets its pace, ``poll_s`` (seconds between its checks): :meth:`wait_for_job`,
    :meth:`wait_until_served`. ``timeout_s`` is only the deployment setting of that name
    (how long the server lets one request take), passed to :meth:`deploy` and
    :meth:`update_deployment`.

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
        verify: str | os.PathLike[str] | ssl.SSLContext | None = None,
        project: str | None = None,
    ) -> None:
        settings = load_settings()
        if isinstance(verify, bool):
            raise InvalidArgument(
                "verify= takes the path of a CA bundle or an ssl.SSLContext, not a bool: certificates "
                "are always verified (for a self-signed one, give the certificate's own file)",
                details={"field": "verify"},
            )
        self._verify = (
            verify if isinstance(verify, ssl.SSLContext) else client_context(verify or settings.tls_ca_file)
        )
        self.url = (url or settings.resolved_control_plane_url()).rstrip("/")
        self._inference_url = (inference_url or settings.inference_url or "").rstrip("/") or None
        self._default_inference_url = settings.resolved_inference_url()
        key = api_key or settings.api_key or local_api_key(settings.admin_key_path())
        self._headers = {"authorization": f"Bearer {key}"} if key else {}
        self.project = project or settings.project
        if self.project:
            self._headers[PROJECT_HEADER] = self.project
        self._timeout = timeout
        self._transport = transport
        self._api = httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers=self._headers,
            timeout=timeout,
            transport=transport,
            verify=self._verify,
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
                verify=self._verify,
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

    # -- projects ------------------------------------------------------------------------

    def list_projects(self) -> list[schemas.Project]:
        return schemas.ProjectList.model_validate_json(self._get("/projects").content).projects

    def get_project(self, name: str) -> schemas.Project:
        return schemas.Project.model_validate_json(self._get(f"/projects/{name}").content)

    def create_project(self, name: str, *, description: str = "") -> schemas.Project:
        """A new project; work in it with ``Client(project=name)``."""
        body = schemas.ProjectCreate(name=name, description=description)
        return schemas.Project.model_validate_json(self._send("POST", "/projects", body).content)

    def set_project_quotas(self, name: str, **quotas: int | None) -> schemas.Project:
        """Set project ``name``'s quotas (the platform admin key only); the answer shows its usage.

        Args:
            quotas: any of ``max_jobs``, ``max_slots``, ``max_replicas``, ``max_bytes``: a
                number sets it, ``None`` makes it unlimited; a quota not named is kept.

        Example:
            >>> client.set_project_quotas("team-a", max_jobs=2, max_bytes=None)  # doctest: +SKIP
        """
        body = request_body(schemas.ProjectQuotaUpdate, **quotas)
        response = request(
            self._api,
            "PATCH",
            f"/projects/{name}",
            content=body.model_dump_json(exclude_unset=True),
            headers={"content-type": "application/json"},
        )
        return schemas.Project.model_validate_json(response.content)

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
        body = request_body(
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
        body = request_body(
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

    # -- helpers -----------------------------------------------------------------------------

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
