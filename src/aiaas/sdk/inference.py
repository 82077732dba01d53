"""The SDK's part for the inference server: predict, explain, and what it serves now.

A mixin of :class:`aiaas.Client`, like :mod:`.monitoring`; it talks to the inference server
(``Client._infer``), not the control plane, except to read a deployment's state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
import numpy as np
import orjson

from aiaas import schemas
from aiaas.errors import InvalidArgument, Unavailable
from aiaas.formats import decode_tensors, numpy_dtype
from aiaas.sdk._http import INFERENCE_SERVER, raise_for_error, request, send

__all__ = ["Arrays", "InferenceMethods"]

Arrays = dict[str, np.ndarray[Any, Any]]
#: How often :meth:`InferenceMethods.wait_until_served` asks the control plane for a load error.
_STATE_POLL_S = 0.25


class InferenceMethods:
    """Methods of :class:`aiaas.Client` over the inference server's V2 and V1 endpoints."""

    _signatures: dict[str, dict[str, str]]  # set by Client: deployment → input name → datatype

    @property
    def _infer(self) -> httpx.Client:  # provided by Client
        raise NotImplementedError

    def get_deployment(self, name: str) -> schemas.Deployment:  # provided by Client
        raise NotImplementedError

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

    def _input_datatypes(self, deployment: str) -> dict[str, str]:
        cached = self._signatures.get(deployment)
        if cached is None:
            meta = request(self._infer, "GET", f"/v2/models/{deployment}", server=INFERENCE_SERVER).json()
            cached = {t["name"]: t["datatype"] for t in meta["inputs"]}
            self._signatures[deployment] = cached
        return cached


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
