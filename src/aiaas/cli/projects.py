"""``aiaas projects``: list, create and show projects, and set their quotas.

Every other command works in one project: ``--project NAME`` (or ``AIAAS_PROJECT``), else the
server's ``default``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aiaas import schemas
from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import print_json, print_pairs, table

__all__ = ["projects_app"]

projects_app = typer.Typer(
    help="Projects: the namespaces models, datasets, jobs, deployments and alerts live in.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="Project name: lowercase letters, digits, '_' or '-'.")]


@projects_app.command("list")
def list_projects(ctx: typer.Context, json: JsonOption = False) -> None:
    """List projects."""
    projects = client(ctx).list_projects()
    if json:
        return print_json(projects)
    table(
        "Projects",
        ["name", "description", "created"],
        [(p.name, p.description, p.created_at) for p in projects],
    )
    return None


@projects_app.command("create")
def create(
    ctx: typer.Context,
    name: NameArgument,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    json: JsonOption = False,
) -> None:
    """Create a project; work in it with **--project NAME** or AIAAS_PROJECT."""
    project = client(ctx).create_project(name, description=description)
    if json:
        return print_json(project)
    print_pairs(None, [("created project", project.name)])
    return None


@projects_app.command("show")
def show(ctx: typer.Context, name: NameArgument, json: JsonOption = False) -> None:
    """Show a project, its quotas and what it uses of them."""
    project = client(ctx).get_project(name)
    if json:
        return print_json(project)
    _print(project)
    return None


@projects_app.command("quota")
def quota(
    ctx: typer.Context,
    name: NameArgument,
    max_jobs: Annotated[int | None, typer.Option(min=0, help="Training jobs queued or running.")] = None,
    max_slots: Annotated[
        int | None, typer.Option(min=0, help="CPU slots of the training jobs queued or running.")
    ] = None,
    max_replicas: Annotated[
        int | None, typer.Option(min=0, help="Sum of the deployments' max_replicas.")
    ] = None,
    max_bytes: Annotated[int | None, typer.Option(min=0, help="Bytes of model and dataset versions.")] = None,
    unlimited: Annotated[
        list[str] | None,
        typer.Option(help="A quota to lift (max-jobs, max-slots, max-replicas, max-bytes; repeat)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Set a project's quotas (platform admin key); quotas not given are kept."""
    quotas: dict[str, int | None] = {
        k: v
        for k, v in {
            "max_jobs": max_jobs,
            "max_slots": max_slots,
            "max_replicas": max_replicas,
            "max_bytes": max_bytes,
        }.items()
        if v is not None
    }
    for lifted in unlimited or []:
        key = lifted.replace("-", "_")
        if key not in ("max_jobs", "max_slots", "max_replicas", "max_bytes"):
            raise typer.BadParameter(
                f"{lifted!r} is not a quota: max-jobs, max-slots, max-replicas or max-bytes",
                param_hint="--unlimited",
            )
        quotas[key] = None
    if not quotas:
        raise typer.BadParameter(
            "give a quota to set (--max-jobs, --max-slots, --max-replicas, --max-bytes) or --unlimited",
            param_hint="--max-jobs",
        )
    project = client(ctx).set_project_quotas(name, **quotas)
    if json:
        return print_json(project)
    _print(project)
    return None


def _print(project: schemas.Project) -> None:
    usage = project.usage
    rows: list[tuple[str, object]] = [("description", project.description), ("created", project.created_at)]
    for quota_name, used in (
        ("max_jobs", usage.jobs if usage else None),
        ("max_slots", usage.slots if usage else None),
        ("max_replicas", usage.replicas if usage else None),
        ("max_bytes", usage.bytes if usage else None),
    ):
        limit = getattr(project.quotas, quota_name)
        shown = "unlimited" if limit is None else f"{limit}"
        rows.append((quota_name, f"{'?' if used is None else used} used of {shown}"))
    print_pairs(project.name, rows)
