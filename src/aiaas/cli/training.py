"""``aiaas train`` and ``aiaas jobs ...``: training jobs from the command line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, err, fmt, print_json, table

if TYPE_CHECKING:
    from aiaas.schemas import Job
    from aiaas.sdk import Client

__all__ = ["exit_unless_succeeded", "follow_with_progress", "jobs_app", "train"]

jobs_app = typer.Typer(help="Training jobs: list, show, follow logs, metrics, cancel.", no_args_is_help=True)

#: Seconds between polls while following a job.
_POLL_S = 0.5
#: Metrics shown beside the progress bar, in this order, when the job reports them.
_BAR_METRICS = (
    "method",
    "loss",
    "val_loss",
    "val_accuracy",
    "val_f1",
    "val_r2",
    "val_perplexity",
    "samples_per_s",
)


def train(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Job spec file (YAML or JSON).")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job with a progress bar until it ends.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Submit a training job from a spec file.

    The spec names a dataset version, the target, the model family and its hyper-parameters,
    the optimizer and schedule, epochs, batch size, early stopping, the seed and the number
    of data-parallel workers. On success the model is registered as a new version.
    """
    c = client(ctx)
    job = c.submit_job(spec)
    if not wait:
        if json:
            return print_json(job)
        console.print(
            f"job [bold]{job.id}[/] queued: {job.spec.get('model', {}).get('family', '?')} on "
            f"{job.dataset}:{job.dataset_version} → {job.register_as}",
            highlight=False,
        )
        _print_registration(job)
        console.print(f"follow it: aiaas jobs logs -f {job.id}", highlight=False)
        return None
    if not json:
        _print_registration(job)
    job = follow_with_progress(c, job, quiet=json)
    if json:
        print_json(job)
    exit_unless_succeeded(job)
    return None


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only jobs in this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json: JsonOption = False,
) -> None:
    """List training and optimization jobs, newest first."""
    jobs = client(ctx).list_jobs(status, limit=limit)
    if json:
        return print_json(jobs)
    table(
        "Jobs",
        ["id", "status", "family", "epoch", "data → model", "created"],
        [
            (
                j.id,
                j.status,
                _what(j),
                _progress(j),
                f"{j.dataset}:{j.dataset_version} → {j.register_as}"
                + (f":{j.result_version}" if j.result_version else ""),
                j.created_at,
            )
            for j in jobs
        ],
        keep=["id", "status", "epoch"],
    )
    return None


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: int, json: JsonOption = False) -> None:
    """Show a job: status, spec, attempts, and its per-epoch metrics."""
    c = client(ctx)
    job, metrics = c.get_job(job_id), c.job_metrics(job_id)
    if json:
        return print_json(
            {"job": job.model_dump(mode="json"), "metrics": [m.model_dump(mode="json") for m in metrics]}
        )
    console.print(f"[bold]job {job.id}[/]  {job.status}  attempts {job.attempts}")
    console.print(f"dataset {job.dataset}:{job.dataset_version} → model {job.register_as}")
    if job.result_version:
        console.print(f"registered: {job.register_as} version {job.result_version}")
    if job.error:
        console.print(f"[red]error:[/] {job.error}", highlight=False)
    table("Spec", ["field", "value"], sorted(job.spec.items()))
    _metrics_table(metrics)
    return None


@jobs_app.command("metrics")
def metrics(ctx: typer.Context, job_id: int, json: JsonOption = False) -> None:
    """Per-epoch metrics of a job."""
    items = client(ctx).job_metrics(job_id)
    if json:
        return print_json(items)
    _metrics_table(items)
    return None


@jobs_app.command("logs")
def logs(
    ctx: typer.Context,
    job_id: int,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
) -> None:
    """Print a job's log; with -f, follow it until the job ends (Ctrl-C stops following)."""
    c = client(ctx)
    after = 0
    try:
        while True:
            page = c.job_logs(job_id, after=after)
            for line in page.lines:
                console.print(f"{line.created_at.strftime('%T')}  {line.message}", highlight=False)
            after = page.next_after
            if not follow:
                return
            if not page.lines and c.get_job(job_id).finished:
                # One more page: lines written between the last read and the status check.
                for line in c.job_logs(job_id, after=after).lines:
                    console.print(f"{line.created_at.strftime('%T')}  {line.message}", highlight=False)
                return
            if not page.lines:
                time.sleep(_POLL_S)
    except KeyboardInterrupt:
        err.print(f"stopped following; job {job_id} keeps running")


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: int, json: JsonOption = False) -> None:
    """Cancel a queued or running job."""
    job = client(ctx).cancel_job(job_id)
    if json:
        return print_json(job)
    state = "cancelled" if job.status == "cancelled" else "stopping (cancel requested)"
    console.print(f"job {job.id}: {state}")
    return None


def follow_with_progress(c: Client, job: Job, *, quiet: bool) -> Job:
    """Poll the job, drawing epoch / loss / ETA, and printing its log lines above the bar."""
    after = 0
    columns = (
        TextColumn("[bold]job {task.fields[job]}[/] {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metrics]}"),
    )
    try:
        with Progress(*columns, console=err, disable=quiet, transient=False) as progress:
            unit = "steps" if job.kind == "optimize" else "epochs"
            bar = progress.add_task(
                "train", total=job.epochs, job=job.id, status=job.status, metrics="", unit=unit
            )
            while True:
                page = c.job_logs(job.id, after=after)
                after = page.next_after
                if not quiet:
                    for line in page.lines:
                        progress.console.print(f"  {line.message}", highlight=False)
                job = c.get_job(job.id)
                progress.update(
                    bar,
                    completed=job.last_epoch or 0,
                    status=job.status,
                    metrics=_bar_metrics(job.last_metrics or {}),
                )
                if job.finished:
                    return job
                time.sleep(_POLL_S)
    except KeyboardInterrupt:
        err.print(f"stopped following; job {job.id} keeps running (aiaas jobs logs -f {job.id})")
        raise typer.Exit(130) from None


def _what(job: Job) -> str:
    """A training job's family, or an optimization job's method (``optimize:prune``)."""
    if job.kind == "optimize":
        return f"optimize:{job.spec.get('method')}"
    model = job.spec.get("model")
    return str(model.get("family")) if isinstance(model, dict) else "?"


def _progress(job: Job) -> str:
    if job.kind == "optimize":  # steps are not checkpointed: done when it succeeded
        return f"{job.epochs if job.status == 'succeeded' else 0}/{job.epochs}"
    return f"{job.checkpoint_epoch or 0}/{job.epochs}"


def _print_registration(job: Job) -> None:
    """Where the result goes, said loudly when the name was derived: a spec without
    ``register_as`` may add a version to a model that someone else is using."""
    r = job.registration
    if r is None:  # a control plane that predates the registration answer
        return
    style = "yellow" if r.defaulted and r.existing_versions else "dim" if not r.defaulted else ""
    text = f"[{style}]{escape(r.note)}[/]" if style else escape(r.note)
    console.print(text, highlight=False)


def exit_unless_succeeded(job: Job) -> None:
    if job.status == "succeeded":
        console.print(f"[green]succeeded:[/] registered {job.register_as} version {job.result_version}")
        return
    reason = f": {job.error}" if job.error else ""
    err.print(f"[red]job {job.id} {job.status}[/]{reason}", highlight=False)
    raise typer.Exit(1)


def _bar_metrics(values: dict[str, Any]) -> str:
    return "  ".join(f"{k}={fmt(values[k])}" for k in _BAR_METRICS if k in values)


def _metrics_table(items: list[Any]) -> None:
    # The metrics beside the progress bar first: when the terminal is narrow, the rest go.
    names = [k for k in _BAR_METRICS if any(k in m.metrics for m in items)]
    for item in items:
        names += [k for k in item.metrics if k not in names]
    table(
        "Metrics per epoch",
        ["epoch", *names],
        [(m.epoch, *(m.metrics.get(k) for k in names)) for m in items],
        keep=["epoch", *names],
        trim=True,
    )
