"""The SDK's part for training and optimization jobs: submit, follow, cancel.

A mixin of :class:`aiaas.Client`, like :mod:`.monitoring`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from aiaas import schemas
from aiaas.errors import DeadlineExceeded
from aiaas.sdk._http import request, request_body

__all__ = ["JobMethods"]


class JobMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/jobs`` and ``.../optimize``."""

    _api: httpx.Client  # set by Client

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

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
            spec = request_body(schemas.JobSpec, **dict(spec))
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
        spec = request_body(schemas.OptimizeSpec, **body)
        response = request(
            self._api,
            "POST",
            f"/models/{model}/versions/{version}/optimize",
            content=spec.model_dump_json(exclude_unset=True, exclude={"model", "version"}),
            headers={"content-type": "application/json"},
        )
        return schemas.Job.model_validate_json(response.content)
