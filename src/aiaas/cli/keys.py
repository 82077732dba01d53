"""``aiaas keys ...``: make, list and revoke API keys (the CLI's key must be an admin key)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="API keys: make one (its secret is shown once), list them, revoke one. Roles: viewer "
    "(read), developer (read and write), admin (also keys), inference (predict on named deployments).",
    no_args_is_help=True,
)


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the key is for.")],
    role: Annotated[str, typer.Option(help="viewer, developer, admin or inference.")] = "developer",
    deployment: Annotated[
        list[str] | None,
        typer.Option("--deployment", "-d", help="For role inference: a deployment it may call (repeat)."),
    ] = None,
    project: Annotated[str | None, typer.Option(help="The key's project (default: yours).")] = None,
    all_projects: Annotated[
        bool,
        typer.Option("--all-projects", help="A viewer key of every project, e.g. for Prometheus (/metrics)."),
    ] = False,
    expires: Annotated[
        str | None, typer.Option(help="When it stops working: an ISO 8601 time (UTC when no zone).")
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            help="Requests/s on the inference server (0: unlimited; default: AIAAS_KEY_RATE_LIMIT)."
        ),
    ] = None,
    burst: Annotated[
        int | None,
        typer.Option(help="Requests admitted at once on top of the rate (default: AIAAS_KEY_RATE_BURST)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Make an API key and print it: this is the only time it is shown."""
    expires_at = None
    if expires is not None:
        try:
            expires_at = dt.datetime.fromisoformat(expires)
        except ValueError:
            raise typer.BadParameter(f"not an ISO 8601 time: {expires!r}", param_hint="--expires") from None
    created = client(ctx).create_key(
        name,
        role=role,
        project=project,
        deployments=deployment or None,
        expires_at=expires_at,
        all_projects=all_projects,
        rate_limit=rate_limit,
        rate_burst=burst,
    )
    if json:
        return print_json(created)
    console.print(f"made key {created.key_id} ({created.role}) named {created.name!r}; shown this once:")
    console.print(created.key, soft_wrap=True, highlight=False)
    return None


@keys_app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
    json: JsonOption = False,
) -> None:
    """List API keys: id, name, role, project, deployments, expiry (never the secrets)."""
    result = client(ctx).list_keys(include_revoked=all_)
    if json:
        return print_json(result)
    table(
        "API keys",
        ["id", "name", "role", "project", "deployments", "rate", "created", "expires", "revoked", "ends"],
        [
            (
                k.key_id,
                k.name,
                k.role,
                k.project or "(all)",
                ", ".join(k.deployments or []),
                _rate(k.rate_limit, k.rate_burst),
                k.created_at,
                k.expires_at or "",
                k.revoked_at or "",
                k.last4,
            )
            for k in result
        ],
        keep=["id", "name", "role"],
    )
    return None


def _rate(rate_limit: float | None, rate_burst: int | None) -> str:
    if rate_limit is None:
        return "default" if rate_burst is None else f"default, burst {rate_burst}"
    if rate_limit == 0:
        return "unlimited"
    return f"{rate_limit:g}/s" + (f", burst {rate_burst}" if rate_burst is not None else "")


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (aiaas_<id>_...).")],
    json: JsonOption = False,
) -> None:
    """Revoke an API key: both servers refuse it within seconds."""
    key = client(ctx).revoke_key(key_id)
    if json:
        return print_json(key)
    console.print(f"revoked key {key.key_id} ({key.name})")
    return None
