"""``aiaas deploy``, ``aiaas deployments ...`` and ``aiaas predict``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table

__all__ = ["deploy", "deployments_app", "predict"]

deployments_app = typer.Typer(help="Deployments: what the inference server serves.", no_args_is_help=True)


def deploy(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment name: clients call /v2/models/NAME/infer.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model to serve (default: NAME).")] = "",
    version: Annotated[int | None, typer.Option(help="Pin this version.")] = None,
    alias: Annotated[
        str | None, typer.Option(help="Follow this alias (e.g. production) as it moves.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the inference server serves it.")] = True,
    json: JsonOption = False,
) -> None:
    """Deploy a model (latest version unless --version or --alias), or switch an existing deployment."""
    from aiaas.errors import AlreadyExists

    c = client(ctx)
    try:
        result = c.deploy(name, model=model or name, version=version, alias=alias)
    except AlreadyExists:
        result = c.update_deployment(name, version=version, alias=alias)
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


@deployments_app.command("list")
def list_deployments(ctx: typer.Context, json: JsonOption = False) -> None:
    """List deployments and the version each serves."""
    items = client(ctx).list_deployments()
    if json:
        return print_json(items)
    table(
        "Deployments",
        ["name", "model", "follows", "serving", "updated"],
        [
            (
                d.name,
                d.model,
                f"@{d.alias}" if d.alias else f"v{d.version}",
                d.serving_version,
                d.updated_at.strftime("%F %T"),
            )
            for d in items
        ],
    )


@deployments_app.command("delete")
def delete_deployment(ctx: typer.Context, name: str) -> None:
    """Stop serving a deployment."""
    client(ctx).delete_deployment(name)
    console.print(f"deleted deployment {name}")


def predict(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="Deployment to call.")],
    file: Annotated[str, typer.Argument(help="JSON request body; '-' reads stdin.")] = "-",
    protocol: Annotated[
        str | None, typer.Option(help="v2 or v1 (default: from the body: 'instances' means v1).")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="Call this version instead of the deployed one (V2).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Send a V2 ({"inputs": \\[tensors]}) or V1 ({"instances": \\[rows]}) request and print the response."""
    import orjson

    text = sys.stdin.read() if file == "-" else _read(file)
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"request is not valid JSON: {exc}", param_hint="FILE") from None
    if not isinstance(body, dict):
        raise typer.BadParameter("request must be a JSON object", param_hint="FILE")
    chosen = protocol or _protocol_of(body)
    result = client(ctx).infer_json(deployment, body, protocol=chosen, version=version)
    if json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
    else:
        print_json(result)


def _read(file: str) -> str:
    path = Path(file)
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {file}", param_hint="FILE")
    return path.read_text()


def _protocol_of(body: dict[str, Any]) -> str:
    inputs = body.get("inputs")
    is_v2 = (
        isinstance(inputs, list)
        and bool(inputs)
        and all(isinstance(t, dict) and "datatype" in t for t in inputs)
    )
    return "v2" if is_v2 else "v1"
