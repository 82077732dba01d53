"""The authorization matrix: every endpoint of both servers by eight principals → the status the
rules say, and no name of project A in any answer to a principal that may not see A.

The endpoints come from the servers' own OpenAPI documents, so a new endpoint is checked
without editing this file, and one no rule covers fails the test (:func:`_rule_gap`). Every
path parameter names a resource that exists in project A (made once, in the module fixture),
with a unique name (``secret-...-<hex>``) that the leak check looks for in the bodies and
headers of every answer to the key of project B and to the inference key of another
deployment.

What the principals send: a principal the rules refuse sends a *valid* request where one is
cheap to write (:data:`VALID_BODIES`), so a 404 or 403 is the refusal, not a validation error
before it. A principal the rules allow sends an empty JSON object to every write: past the key
check, a validation error stops it (or it does nothing), so project A's fixture stays as it is.
Destructive calls (DELETE, archive, cancel, abort) a principal may make are skipped: only
their refusals are checked (:data:`DESTRUCTIVE`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from aiaas.sdk import Client
from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests._servers import wait_until
from tests.e2e.conftest import Platform

TAG = uuid.uuid4().hex[:8]
PROJECT_A, PROJECT_B = f"secret-project-a-{TAG}", f"matrix-b-{TAG}"
MODEL, DEPLOYMENT, OTHER = f"secret-model-{TAG}", f"secret-deployment-{TAG}", f"other-deployment-{TAG}"
DATASET, RULE, WEBHOOK = f"secret-dataset-{TAG}", f"secret-rule-{TAG}", f"secret-webhook-{TAG}"
ALIAS = "champion"

NO_KEY, BAD_KEY, REVOKED = "no key", "bad key", "revoked key"
VIEWER, DEVELOPER, ADMIN = "viewer", "developer", "admin"
INFERENCE_OTHER, PROJECT_B_KEY = "inference key of another deployment", "key of project B"
PRINCIPALS = [NO_KEY, BAD_KEY, REVOKED, VIEWER, DEVELOPER, ADMIN, INFERENCE_OTHER, PROJECT_B_KEY]
UNAUTHENTICATED = {NO_KEY, BAD_KEY, REVOKED}

#: What "allowed" means: past the key check (not 401, not 403) and never a server error.
ALLOWED = "allowed"
#: Paths that answer without a key on either server.
OPEN_PATHS = frozenset({"/api/v1/health", "/v2/health/live", "/v2/health/ready", "/openapi.json"})
#: Calls that would change or destroy project A's fixture when allowed: only refusals are checked.
DESTRUCTIVE = re.compile(r"^DELETE |/(archive|cancel|abort)$")
#: Writes that make the resource they name in the caller's own project when it has none: another
#: project's key is allowed them (in its project); it is sent an empty body, so it makes nothing.
UPSERTS = frozenset(
    {("POST", "/api/v1/datasets/{name}/versions"), ("POST", "/api/v1/models/{name}/versions")}
)

_X = iris()[0][:2].astype(np.float32)
_V2 = {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(_X.shape), "data": _X.ravel().tolist()}]}
#: Bodies that pass validation, sent by principals that must be refused by the resource check.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/datasets/{name}/versions"): {"sample": "iris"},
    ("PATCH", "/api/v1/deployments/{name}"): {"max_replicas": 2},
    ("POST", "/api/v1/deployments/{name}/feedback"): {"request_id": "r-1", "label": 1},
    ("PUT", "/api/v1/deployments/{name}/retraining"): {
        "trigger": {"schedule": "1d"},
        "data": {"dataset": "iris"},
    },
    ("POST", "/api/v1/deployments/{name}/rollouts"): {"version": 1, "steps": [{"weight": 100, "bake": "1s"}]},
    ("PATCH", "/api/v1/models/{name}"): {"description": "changed"},
    ("PATCH", "/api/v1/projects/{name}"): {"max_bytes": None},  # unlimited, as it is
    ("PUT", "/api/v1/models/{name}/aliases/{alias}"): {"version": 1},
    ("POST", "/api/v1/models/{name}/versions/{ref}/optimize"): {"method": "fp16"},
    ("POST", "/v2/models/{name}/infer"): _V2,
    ("POST", "/v2/models/{name}/versions/{version}/infer"): _V2,
    ("POST", "/v2/models/{name}/explain"): _V2,
    ("POST", "/v2/models/{name}/versions/{version}/explain"): _V2,
    ("POST", "/v1/models/{target}"): {"instances": _X.tolist()},
    ("POST", "/v1/models/{name}:explain"): {"instances": _X.tolist()},
    ("POST", "/v1/models/{name}/versions/{version}:explain"): {"instances": _X.tolist()},
    ("POST", "/v1/models/{name}/versions/{target}"): {"instances": _X.tolist()},
    ("POST", "/openai/v1/embeddings"): {"model": DEPLOYMENT, "input": "hi"},
    ("POST", "/openai/v1/completions"): {"model": DEPLOYMENT, "prompt": "hi", "max_tokens": 1},
    ("POST", "/openai/v1/chat/completions"): {
        "model": DEPLOYMENT,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 1,
    },
}


@dataclass(frozen=True)
class World:
    """Project A's resources and the eight principals' headers."""

    platform: Platform
    headers: dict[str, dict[str, str]]
    values: dict[str, str]  # path parameter -> value, per server (see _path)
    key_id: str  # a key of project A, for /api/v1/keys/{key_id}

    def leak_names(self, principal: str) -> tuple[str, ...]:
        """The names of A that ``principal`` must never be shown."""
        if principal == PROJECT_B_KEY:
            return (PROJECT_A, MODEL, DEPLOYMENT, OTHER, DATASET, RULE, WEBHOOK)
        if principal == INFERENCE_OTHER:  # its own deployment serves MODEL: that one it may see
            return (DEPLOYMENT, DATASET, RULE, WEBHOOK)
        return ()


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def world(platform: Platform) -> Iterator[World]:
    admin = platform.client  # the platform admin key
    for project in (PROJECT_A, PROJECT_B):
        admin.create_project(project)
    X, _ = iris()
    with Client(platform.api_url, inference_url=platform.inference_url, project=PROJECT_A) as a:
        a.register_model(MODEL, iris_classifier(), example=X[:5])
        a.set_alias(MODEL, ALIAS, 1)
        for name in (DEPLOYMENT, OTHER):
            a.deploy(name, model=MODEL, version=1)
        a.create_dataset(DATASET, sample="iris", target="target")
        a.create_alert_rule(
            RULE, metric="error_rate", op=">", threshold=0.5, window="1m", deployment=DEPLOYMENT
        )
        a.add_webhook(WEBHOOK, "http://127.0.0.1:9/hook")
        silence = a.silence(rule=RULE, duration="1h")
        job = a.submit_job(f"dataset: {DATASET}\nmodel: {{family: logistic}}\nregister_as: {MODEL}\n")
        a.cancel_job(job.id)
        for name in (DEPLOYMENT, OTHER):
            a.wait_until_served(name, 1)
        a.register_model(MODEL, iris_classifier(), example=X[:5])  # version 2, for a rollout
        rollout = a.start_rollout(DEPLOYMENT, 2, steps=[(50, "1h"), (100, "1h")])

    def key(name: str, role: str, project: str, **kw: Any) -> Any:
        return admin.create_key(f"{name}-{TAG}", role=role, project=project, **kw)

    revoked = key("revoked", "developer", PROJECT_A)
    keys = {
        VIEWER: key("viewer", "viewer", PROJECT_A),
        DEVELOPER: key("developer", "developer", PROJECT_A),
        ADMIN: key("admin", "admin", PROJECT_A),
        INFERENCE_OTHER: key("inference", "inference", PROJECT_A, deployments=[OTHER]),
        PROJECT_B_KEY: key("project-b", "admin", PROJECT_B),
    }
    admin.revoke_key(revoked.key_id)
    headers = {
        NO_KEY: {},
        BAD_KEY: _bearer("aiaas_000000000000_not-a-key-of-this-platform-at-all-000000"),
        REVOKED: _bearer(revoked.key),
        **{principal: _bearer(made.key) for principal, made in keys.items()},
    }
    # The inference server reloads its keys every second: wait until it knows the new ones and
    # refuses the revoked one.
    ready = f"{platform.inference_url}/v2/models/{OTHER}"
    wait_until(lambda: httpx.get(ready, headers=headers[INFERENCE_OTHER]).status_code == 200, timeout=30)
    wait_until(lambda: httpx.get(ready, headers=headers[REVOKED]).status_code == 401, timeout=30)
    values = {
        "job_id": str(job.id),
        "silence_id": str(silence.id),
        "rollout_id": str(rollout.id),
        "version": "1",
        "ref": "1",
        "alias": ALIAS,
        "key_id": keys[VIEWER].key_id,
        "model": DEPLOYMENT,
    }
    yield World(platform=platform, headers=headers, values=values, key_id=keys[VIEWER].key_id)


# -- the rules ------------------------------------------------------------------------------


def _names_a_resource(path: str) -> bool:
    return "{" in path


def control_plane_rule(principal: str, method: str, path: str) -> int | str:
    """The status (or ALLOWED) a control-plane request of ``principal`` must get."""
    if path in OPEN_PATHS:
        return ALLOWED
    if principal in UNAUTHENTICATED:
        return 401
    if principal == INFERENCE_OTHER or path == "/metrics":
        return 403  # /metrics names every project's deployments: the platform admin key's only
    keys = path.startswith("/api/v1/keys")
    projects_write = path.startswith("/api/v1/projects") and method != "GET"
    if principal == VIEWER:
        return 403 if keys or method != "GET" else ALLOWED
    if principal == DEVELOPER:
        return 403 if keys or projects_write else ALLOWED
    if principal == ADMIN:  # project A's admin: only the platform admin key makes projects
        return 403 if projects_write else ALLOWED
    if principal == PROJECT_B_KEY:  # project B's admin
        if projects_write:
            return 403
        return 404 if _names_a_resource(path) and (method, path) not in UPSERTS else ALLOWED
    raise AssertionError(f"no rule for {principal}")


def inference_rule(principal: str, method: str, path: str) -> int | str:
    """The status (or ALLOWED) an inference-server request of ``principal`` must get."""
    if path in OPEN_PATHS:
        return ALLOWED
    if principal in UNAUTHENTICATED:
        return 401
    names_a = _names_a_resource(path) or (path.startswith("/openai/v1/") and method == "POST")
    if principal in (INFERENCE_OTHER, PROJECT_B_KEY) and names_a:
        return 404  # as if DEPLOYMENT did not exist: neither may learn that it does
    if path == "/metrics":
        return 403  # it names every project's deployments: the platform admin key's only
    if principal == VIEWER and method != "GET":
        return 403
    return ALLOWED


def _rule_gap(method: str, path: str) -> str | None:
    """Why an operation of either document has no rule here, or None."""
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return f"{method} {path}: no rule for the method {method}"
    if method in ("POST", "PUT", "PATCH") and _names_a_resource(path) and (method, path) not in VALID_BODIES:
        needs_body = not DESTRUCTIVE.search(f"{method} {path}") and not path.endswith("/versions")
        if needs_body:
            return f"{method} {path}: no valid body in VALID_BODIES (a refusal must not be a 422)"
    return None


# -- the requests ---------------------------------------------------------------------------


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "post", "put", "patch", "delete", "head", "options")
    ]


def _path(path: str, method: str, values: dict[str, str]) -> str:
    """``path`` with each parameter naming a resource of project A."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "name":
            for prefix, resource in (
                ("/api/v1/models/", MODEL),
                ("/api/v1/datasets/", DATASET),
                ("/api/v1/deployments/", DEPLOYMENT),
                ("/api/v1/alerts/rules/", RULE),
                ("/api/v1/alerts/webhooks/", WEBHOOK),
                ("/api/v1/projects/", PROJECT_A),
            ):
                if path.startswith(prefix):
                    return resource
            # A new control-plane resource needs one in the fixture (and a line above).
            assert not path.startswith("/api/"), f"no resource of project A for {{name}} in {path}"
            return DEPLOYMENT  # the inference server's {name}
        if name == "target":  # V1: "<name>" or "<name>:predict", or "<version>:predict"
            if path.startswith("/v1/models/{name}/versions/"):
                return "1:predict" if method == "POST" else "1"
            return f"{DEPLOYMENT}:predict" if method == "POST" else DEPLOYMENT
        return values[name]

    return re.sub(r"\{([^}]+)\}", value, path)


def _query(operation: dict[str, Any]) -> dict[str, str]:
    required = {
        p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and p.get("required")
    }
    known = {"metric": "error_rate", "a": "1", "b": "1"}
    missing = required - known.keys()
    assert not missing, f"no value for the required query parameters {missing}"
    return {name: known[name] for name in required}


def _body(principal: str, method: str, path: str, rule: int | str) -> dict[str, Any] | None:
    if method not in ("POST", "PUT", "PATCH"):
        return None
    if rule == ALLOWED:
        return {}  # past the key check, stopped by validation: A's fixture does not change
    return VALID_BODIES.get((method, path), {})


def _check(
    world: World,
    server: str,
    base: str,
    document: dict[str, Any],
    rule_of: Callable[[str, str, str], int | str],
) -> tuple[int, list[str]]:
    checked, failures = 0, []
    with httpx.Client(base_url=base, timeout=30) as http:
        for method, path, operation in _operations(document):
            gap = _rule_gap(method, path)
            if gap:
                failures.append(f"{server}: {gap}")
                continue
            url = _path(path, method, world.values)
            for principal in PRINCIPALS:
                rule = rule_of(principal, method, path)
                if rule == ALLOWED and DESTRUCTIVE.search(f"{method} {path}"):
                    continue  # allowed and destructive: only its refusals are checked
                response = http.request(
                    method,
                    url,
                    headers=world.headers[principal],
                    params=_query(operation),
                    json=_body(principal, method, path, rule),
                )
                checked += 1
                status = response.status_code
                where = f"{server} {method} {url} as {principal}"
                ok = status not in (401, 403) and status < 500 if rule == ALLOWED else status == rule
                if not ok:
                    failures.append(f"{where}: {status}, expected {rule}: {response.text[:300]}")
                # A name the request gave may come back (a 404 saying what was not found); any
                # other name of A is a leak (lists included).
                asked = url + json.dumps(_body(principal, method, path, rule))
                text = _foreign(response, world, principal) if path == "/api/v1/audit" else response.text
                text = text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
                for name in world.leak_names(principal):
                    if name in text and name not in asked:
                        failures.append(f"{where}: the answer names {name!r} of project A ({status})")
    return checked, failures


def _foreign(response: httpx.Response, world: World, principal: str) -> str:
    """The audit entries a key may not see: every entry but its project's (its own requests,
    naming whatever it asked for, A's names included, are its project's)."""
    if response.status_code != 200:
        return response.text
    entries = response.json()["entries"]
    own = PROJECT_B if principal == PROJECT_B_KEY else PROJECT_A
    return json.dumps([e for e in entries if e["project"] != own])


def test_every_endpoint_of_both_servers_answers_each_principal_as_the_rules_say(world: World) -> None:
    platform = world.platform
    control = httpx.get(f"{platform.api_url}/openapi.json").json()
    inference = httpx.get(f"{platform.inference_url}/openapi.json").json()
    assert len(_operations(control)) > 50 and len(_operations(inference)) > 15
    checked_cp, failures_cp = _check(world, "control plane", platform.api_url, control, control_plane_rule)
    checked_inf, failures_inf = _check(
        world, "inference server", platform.inference_url, inference, inference_rule
    )
    failures = failures_cp + failures_inf
    print(f"checked: control plane {checked_cp}, inference server {checked_inf}")
    assert not failures, f"{len(failures)} of {checked_cp + checked_inf} checks failed:\n" + "\n".join(
        failures
    )
    # Every operation by every principal, less the allowed destructive calls skipped.
    assert checked_cp > len(_operations(control)) * 7 and checked_inf > len(_operations(inference)) * 7


def test_the_inference_server_logs_a_refused_key_in_the_audit_log(world: World) -> None:
    platform = world.platform
    probe = f"/v2/models/audit-probe-{TAG}"

    def logged() -> list[dict[str, Any]]:
        found, after = [], 0
        while True:
            page = httpx.get(
                f"{platform.api_url}/api/v1/audit",
                params={"action": "authenticate", "after": after, "limit": 1000},
                headers=AUTH,  # the platform admin key reads every project's entries
            ).json()
            found += [e for e in page["entries"] if e["resource"] == probe]
            if page["next_after"] is None:
                return found
            after = page["next_after"]

    def refused_and_logged() -> bool:
        # Sent again each time: after the matrix's flood of bad keys, a refusal may be one of
        # those counted rather than logged (at most 20 a second are); 5 a second fit.
        refused = httpx.get(f"{platform.inference_url}{probe}", headers=world.headers[BAD_KEY])
        assert refused.status_code == 401
        return bool(logged())

    wait_until(refused_and_logged, timeout=20, poll=0.2, what="the refused key in the audit log")
    entry = logged()[0]
    assert (entry["actor"], entry["outcome"], entry["details"]["method"]) == ("anonymous", "401", "GET")
    assert entry["project"] is None
    # A project key does not read it: an authentication failure is of no project.
    mine = httpx.get(f"{platform.api_url}/api/v1/audit", headers=world.headers[ADMIN]).json()["entries"]
    assert mine and all(e["project"] == PROJECT_A for e in mine)
