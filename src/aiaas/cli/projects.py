"""``aiaas projects``: list, create and show projects.

Every other command works in one project: ``--project NAME`` (or ``AIAAS_PROJECT``), else the
server's ``default``.
"""

from __future__ import annotations

from typing import Annotated

import typer

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
    """Show a project."""
    project = client(ctx).get_project(name)
    if json:
        return print_json(project)
    print_pairs(project.name, [("description", project.description), ("created", project.created_at)])
    return None
