"""The ``aiaas`` command: global options, sub-commands, and turning errors into messages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aiaas.cli.alerts import alerts_app
from aiaas.cli.audit import audit_app
from aiaas.cli.context import Connection
from aiaas.cli.datasets import datasets_app
from aiaas.cli.deployments import deploy, deployments_app, explain, predict, undeploy
from aiaas.cli.encryption import encryption_app
from aiaas.cli.gc import gc
from aiaas.cli.help import HelpGroup
from aiaas.cli.keys import keys_app
from aiaas.cli.models import models_app, register
from aiaas.cli.monitor import monitor_app
from aiaas.cli.optimize import optimize
from aiaas.cli.output import err, size_to_terminal
from aiaas.cli.platform import api, db_app, serve, up
from aiaas.cli.projects import projects_app
from aiaas.cli.retraining import retraining_app
from aiaas.cli.rollouts import rollouts_app
from aiaas.cli.training import jobs_app, train

__all__ = ["app", "main"]

app = typer.Typer(
    name="aiaas",
    help="aiaas: register, version, deploy and serve models. Start with **aiaas up --demo**.",
    cls=HelpGroup,
    no_args_is_help=True,
    # Markdown: paragraphs of a docstring are re-flowed to the terminal's width (the "rich"
    # mode keeps the docstring's own line breaks, which break mid-sentence at 80 columns).
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        import aiaas

        typer.echo(f"aiaas {aiaas.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            envvar="AIAAS_CONTROL_PLANE_URL", help="Control plane URL (default http://127.0.0.1:8000)."
        ),
    ] = None,
    inference_url: Annotated[
        str | None,
        typer.Option(
            envvar="AIAAS_INFERENCE_URL",
            help="Inference server URL (default: the one the control plane reports).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="AIAAS_API_KEY", help="API key (default: the admin key in <AIAAS_HOME>/admin.key)."
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="AIAAS_TLS_CA_FILE",
            help="PEM CA bundle to verify the servers' HTTPS certificates with (default: the system's CAs).",
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(envvar="AIAAS_PROJECT", help="Project to work in (default: the server's, 'default')."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    size_to_terminal()
    ctx.obj = Connection(
        url=url, inference_url=inference_url, api_key=api_key, ca_file=ca_file, project=project
    )


app.command(rich_help_panel="Platform")(up)
app.command(rich_help_panel="Platform")(api)
app.command(rich_help_panel="Platform")(serve)
app.add_typer(db_app, name="db", rich_help_panel="Platform")
app.command(rich_help_panel="Platform")(gc)
app.add_typer(audit_app, name="audit", rich_help_panel="Platform")
app.add_typer(encryption_app, name="encryption", rich_help_panel="Platform")
app.add_typer(projects_app, name="projects", rich_help_panel="Platform")
app.add_typer(keys_app, name="keys", rich_help_panel="Platform")
app.add_typer(models_app, name="models", rich_help_panel="Registry")
app.command(rich_help_panel="Registry")(register)
app.add_typer(datasets_app, name="datasets", rich_help_panel="Training")
app.command(rich_help_panel="Training")(train)
app.add_typer(jobs_app, name="jobs", rich_help_panel="Training")
app.command(rich_help_panel="Training")(optimize)
app.command(rich_help_panel="Serving")(deploy)
app.command(rich_help_panel="Serving")(undeploy)
app.add_typer(deployments_app, name="deployments", rich_help_panel="Serving")
app.command(rich_help_panel="Serving")(predict)
app.command(rich_help_panel="Serving")(explain)
app.add_typer(monitor_app, name="monitor", rich_help_panel="Serving")
app.add_typer(alerts_app, name="alerts", rich_help_panel="Serving")
app.add_typer(rollouts_app, name="rollouts", rich_help_panel="Serving")
app.add_typer(retraining_app, name="retraining", rich_help_panel="Serving")


def main() -> None:
    """Entry point of the console script: platform errors become one red line and exit code 1."""
    from aiaas.errors import AiaasError

    try:
        app()
    except AiaasError as exc:
        err.print(f"[red]error:[/] {exc.message}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
