"""``aiaas deploy``, ``aiaas deployments ...`` and ``aiaas predict``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, print_pairs, table
from aiaas.cli.setting_options import setting_options, settings_given

if TYPE_CHECKING:
    from pydantic import BaseModel

    from aiaas import schemas

__all__ = ["deploy", "deployments_app", "explain", "predict", "undeploy"]

deployments_app = typer.Typer(help="Deployments: what the inference server serves.", no_args_is_help=True)


@setting_options
def deploy(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment name: clients call /v2/models/NAME/infer.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model to serve (default: NAME).")] = "",
    version: Annotated[int | None, typer.Option(help="Pin this version.")] = None,
    alias: Annotated[
        str | None, typer.Option(help="Follow this alias (e.g. production) as it moves.")
    ] = None,
    canary: Annotated[
        list[str] | None,
        typer.Option(
            "--canary",
            metavar="VERSION:WEIGHT",
            help="Send WEIGHT percent of requests to VERSION (a number or an alias) instead of the "
            "primary, e.g. --canary 3:10; repeat for more routes. Replaces the canaries of an existing "
            "deployment.",
        ),
    ] = None,
    no_canary: Annotated[bool, typer.Option("--no-canary", help="Remove every canary route.")] = False,
    shadow: Annotated[
        str | None,
        typer.Option(
            metavar="VERSION",
            help="Send a copy of every request to VERSION (a number or an alias); its responses are dropped.",
        ),
    ] = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Stop shadowing.")] = False,
    reference_dataset: Annotated[
        str | None,
        typer.Option(
            help="Dataset (NAME or NAME:VERSION) the deployed version's drift is measured against "
            "(a new deployment only)."
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the inference server serves it.")] = True,
    json: JsonOption = False,
    **options: Any,
) -> None:
    """Deploy a model (latest version unless --version or --alias), or change an existing deployment.

    On an existing deployment, options left out keep their value (no option at all: latest version).
    """
    from aiaas.errors import AlreadyExists

    if canary and no_canary:
        raise typer.BadParameter("give --canary or --no-canary, not both", param_hint="--canary")
    if shadow is not None and no_shadow:
        raise typer.BadParameter("give --shadow or --no-shadow, not both", param_hint="--shadow")
    traffic = [] if no_canary else [_canary(c) for c in canary] if canary else None
    shadow_ref = {} if no_shadow else None if shadow is None else _ref(shadow)
    routing: dict[str, Any] = {"traffic": traffic, "shadow": shadow_ref}
    given = settings_given(options)

    c = client(ctx)
    try:
        result = c.deploy(
            name,
            model=model or name,
            version=version,
            alias=alias,
            reference_dataset=reference_dataset,
            **routing,
            **given,
        )
    except AlreadyExists:
        if reference_dataset is not None:
            raise typer.BadParameter(
                f"{name} is deployed already: --reference-dataset applies to a new deployment "
                "(or give it when registering the version)",
                param_hint="--reference-dataset",
            ) from None
        # The options given change a nested setting's current value (batching, the log, drift);
        # the others keep their value.
        nested = [k for k, v in given.items() if isinstance(v, dict)]
        if nested:
            current = c.get_deployment(name)
            for key in nested:
                given[key] = {**getattr(current, key).model_dump(), **given[key]}
        result = c.update_deployment(name, version=version, alias=alias, **routing, **given)
    if wait:
        with console.status(f"waiting for the inference server to serve {name} v{result.serving_version}..."):
            c.wait_until_served(name, result.serving_version)
    if json:
        return print_json(result)
    follows = f"alias {result.alias}" if result.alias else f"version {result.version}"
    console.print(
        f"deployment [bold]{result.name}[/] serves {result.model} v{result.serving_version} ({follows})\n"
        f"  V2: POST {c.inference_url}/v2/models/{result.name}/infer\n"
        f"  V1: POST {c.inference_url}/v1/models/{result.name}:predict"
    )
    if result.traffic:
        console.print(f"  routes: {_routes(result)}")
    if result.shadow:
        console.print(f"  shadow: {_shadow(result)}")


@deployments_app.command("list")
def list_deployments(ctx: typer.Context, json: JsonOption = False) -> None:
    """List deployments, what each follows and where its requests go (routes and shadow)."""
    items = client(ctx).list_deployments()
    if json:
        return print_json(items)
    table(
        "Deployments",
        ["name", "model", "follows", "routes", "shadow", "updated"],
        [
            (
                d.name,
                d.model,
                f"@{d.alias}" if d.alias else f"v{d.version}",
                _routes(d),  # never wrapped: a split folded over two lines is easy to misread
                _shadow(d) if d.shadow else None,
                d.updated_at,
            )
            for d in items
        ],
        keep=["name", "follows", "routes"],
    )
    return None


@deployments_app.command("show")
def show_deployment(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment to show.")],
    json: JsonOption = False,
) -> None:
    """Show one deployment: its target, routes, shadow and serving settings."""
    c = client(ctx)
    d = c.get_deployment(name)
    if json:
        return print_json(d)
    follows = f"@{d.alias}" if d.alias else f"v{d.version}"
    b = d.batching
    batching = (
        f"on: up to {b.max_batch_size} requests, waits up to {b.max_queue_delay_ms:g} ms"
        if b.enabled
        else "off"
    )
    rows = [
        ("model", d.model),
        ("follows", follows),
        ("routes", _routes(d)),
        ("served now", _served(d)),
        ("canaries", ", ".join(f"{_ref_text(r.version, r.alias)} {r.weight}%" for r in d.traffic) or None),
        ("shadow", _shadow(d) if d.shadow else None),
        ("batching", batching),
        ("max queue size", d.max_queue_size),
        ("timeout", f"{d.timeout_s:g} s"),
        ("replicas", f"{d.min_replicas}..{d.max_replicas}, {d.target_in_flight} in flight each"),
        ("scale down after", f"{d.scale_down_delay_s:g} s"),
        ("prediction log", _log_text(d)),
        ("drift thresholds", _changed(d.drift)),
        ("V2", f"POST {c.inference_url}/v2/models/{d.name}/infer"),
        ("updated", d.updated_at),
    ]
    print_pairs(f"Deployment {d.name}", rows)
    return None


def undeploy(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment to delete.")],
) -> None:
    """Stop serving a deployment and delete it; the model and its versions stay."""
    client(ctx).delete_deployment(name)
    console.print(f"deleted deployment {name}: the inference server stops serving it", highlight=False)


@deployments_app.command("events")
def scaling_events(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment.")],
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    json: JsonOption = False,
) -> None:
    """The autoscaler's decisions for a deployment, newest first, each with its reason."""
    events = client(ctx).scaling_events(name, limit=limit)
    if json:
        return print_json(events)
    if not events:
        console.print(f"no scaling events for {name} yet", highlight=False)
        return None
    table(
        f"Scaling events of {name}",
        ["at", "ver", "replicas", "reason"],
        [
            (e.at.strftime("%F %T"), e.version, f"{e.from_replicas} → {e.to_replicas}", e.reason)
            for e in events
        ],
        keep=["ver", "replicas"],
    )
    return None


@deployments_app.command("stats")
def stats(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment.")],
    version: Annotated[int | None, typer.Option(help="Only this version.")] = None,
    json: JsonOption = False,
) -> None:
    """What the inference server has answered for a deployment since it started, per version:
    requests, failures, rows, mean queue and compute time, and the batch sizes it ran."""
    entries = client(ctx).model_stats(name, version)
    if json:
        return print_json(entries)
    if not entries:
        console.print(f"{name} has answered no request since the inference server started", highlight=False)
        return None
    rows = []
    for e in entries:
        s = e["inference_stats"]
        ok, failed = s["success"]["count"], s["fail"]["count"]
        batches = ", ".join(f"{b['compute_infer']['count']}x{b['batch_size']}" for b in e["batch_stats"])
        rows.append(
            (
                e["version"],
                ok,
                failed,
                e["inference_count"],
                _mean_ms(s["success"]),
                _mean_ms(s["queue"]),
                _mean_ms(s["compute_infer"]),
                batches or None,
            )
        )
    table(
        f"Inference statistics of {name}",
        ["ver", "ok", "failed", "rows", "ms/req", "queue ms", "compute ms", "runs x rows"],
        rows,
        keep=["ver", "ok", "failed", "rows", "ms/req", "queue ms", "compute ms"],
    )
    return None


def _mean_ms(duration: dict[str, int]) -> str | None:
    count = duration["count"]
    return f"{duration['ns'] / count / 1e6:.3g}" if count else None


def predict(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="Deployment to call.")],
    body: Annotated[
        str,
        typer.Argument(
            metavar="BODY",
            help="The JSON request body: inline ('{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}'), "
            "a file holding it, or '-' for stdin.",
        ),
    ] = "-",
    protocol: Annotated[
        str | None, typer.Option(help="v2 or v1 (default: from the body: 'instances' means v1).")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(
            help="Call this version of the deployment's model instead of what the deployment routes to "
            "(V2 and V1 bodies alike)."
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Send a V2 (`{"inputs": [tensors]}`) or V1 (`{"instances": [rows]}`) request and print
    the response."""
    import orjson

    request = _request_body(body)
    chosen = protocol or _protocol_of(request)
    result = client(ctx).infer_json(deployment, request, protocol=chosen, version=version)
    if json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
    else:
        print_json(result)


def explain(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="Deployment whose model explains its answers.")],
    body: Annotated[
        str,
        typer.Argument(
            metavar="BODY",
            help="The same JSON body as for predict (V2 inputs or V1 instances): inline, a file, "
            "or '-' for stdin.",
        ),
    ] = "-",
    protocol: Annotated[
        str | None, typer.Option(help="v2 or v1 (default: from the body: 'instances' means v1).")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="Explain this version instead of the deployment's primary one.")
    ] = None,
    max_evals: Annotated[
        int | None,
        typer.Option(help="Model evaluations per row (at least 2 x features + 1; server default 500)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the permutations (default 0).")] = None,
    top: Annotated[int, typer.Option(help="Features shown per row, largest attribution first.")] = 5,
    json: JsonOption = False,
) -> None:
    """Explain predictions: each feature's share of each row's prediction (shap permutation
    values against the version's training data), the base value, and the prediction."""
    import orjson

    from aiaas import schemas

    request = _request_body(body)
    parameters = {k: v for k, v in (("max_evals", max_evals), ("seed", seed)) if v is not None}
    if parameters:
        request["parameters"] = {**(request.get("parameters") or {}), **parameters}
    chosen = protocol or _protocol_of(request)
    result = client(ctx).explain_json(deployment, request, protocol=chosen, version=version)
    if json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    answer = schemas.Explanation.model_validate(result)
    rows = []
    for i, row in enumerate(answer.explanations):
        column = answer.output_columns.index(row.predicted_class) if row.predicted_class is not None else 0
        features = ", ".join(f"{name} {value:+.4g}" for name, value in answer.top_features(i, top))
        predicted = row.predicted_class if row.predicted_class is not None else row.prediction[0]
        rows.append((i, predicted, f"{row.base_value[column]:.4g}", features))
    table(
        f"{deployment} v{answer.model_version}: {answer.explainer} explainer, {answer.max_evals} evaluations "
        f"per row over {answer.background_rows} background rows",
        ["row", "prediction", "base value", "top features (attribution)"],
        rows,
        keep=["row", "prediction", "base value"],
    )


def _request_body(body: str) -> dict[str, Any]:
    """The JSON object BODY holds: inline, in a file, or on stdin (``-``)."""
    import orjson

    if body == "-":
        text = sys.stdin.read()
    elif body.lstrip().startswith(("{", "[")):
        text = body  # inline JSON: a file name never starts with a brace
    else:
        text = _read(body)
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"request is not valid JSON: {exc}", param_hint="BODY") from None
    if not isinstance(request, dict):
        raise typer.BadParameter(
            'request must be a JSON object, such as {"instances": [[...]]}', param_hint="BODY"
        )
    return request


def _read(file: str) -> str:
    path = Path(file)
    if not path.is_file():
        raise typer.BadParameter(
            f"no such file: {file} (inline JSON starts with '{{'; '-' reads stdin)", param_hint="BODY"
        )
    return path.read_text()


def _protocol_of(body: dict[str, Any]) -> str:
    inputs = body.get("inputs")
    is_v2 = (
        isinstance(inputs, list)
        and bool(inputs)
        and all(isinstance(t, dict) and "datatype" in t for t in inputs)
    )
    return "v2" if is_v2 else "v1"


def _canary(text: str) -> dict[str, Any]:
    """``3:10`` or ``staging:10`` → a traffic route."""
    target, sep, weight = text.rpartition(":")
    if not sep or not target or not weight.strip().isdigit():
        raise typer.BadParameter(
            f"expected VERSION:WEIGHT such as 3:10 (10% of requests to version 3); got {text!r}",
            param_hint="--canary",
        )
    return {**_ref(target), "weight": int(weight)}


def _ref(text: str) -> dict[str, Any]:
    """A version number, or else an alias name (aliases never look like numbers)."""
    text = text.strip()
    return {"version": int(text)} if text.isdigit() else {"alias": text}


def _ref_text(version: int | None, alias: str | None) -> str:
    return f"@{alias}" if alias else f"v{version}"


def _routes(d: schemas.Deployment) -> str:
    """``v2 90% · v3 10%``: where requests go now, primary first."""
    if not d.routes:  # a server that predates traffic splitting
        return f"v{d.serving_version} 100%"
    return " · ".join(f"v{r.version} {r.weight}%" for r in d.routes)


def _served(d: schemas.Deployment) -> str:
    """What the inference server reported it serves, and why not what was asked."""
    state = d.served
    if state is None:
        return "no report from the inference server yet"
    text = f"v{state.version}" if state.version is not None else "nothing"
    if state.error:
        text += f"; cannot serve v{state.desired_version}: {state.error}"
    elif not state.up_to_date:
        text += " (picking up the latest change)"
    return text


def _shadow(d: schemas.Deployment) -> str:
    assert d.shadow is not None
    ref = _ref_text(d.shadow.version, d.shadow.alias)
    return ref if d.shadow.version is not None else f"{ref} → v{d.shadow_version}"


def _changed(setting: BaseModel) -> str:
    """A nested setting's keys that differ from their defaults, or "defaults"."""
    default = type(setting)().model_dump()
    changed = {k: v for k, v in setting.model_dump().items() if v != default[k]}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"


def _log_text(d: schemas.Deployment) -> str:
    p = d.prediction_log
    if p.sample_rate == 0:
        return "off"
    share = "every request" if p.sample_rate == 1 else f"{p.sample_rate:.0%} of requests"
    return f"{share}, up to {p.max_rows_per_s:g} a second"
