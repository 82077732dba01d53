"""``aiaas monitor ...``: what served models were asked and answered, how right they were, and
whether their inputs still look like their reference."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table

__all__ = ["monitor_app"]

monitor_app = typer.Typer(
    help="Observe served models: the prediction log, feedback, live performance and drift.",
    no_args_is_help=True,
)

VersionOption = Annotated[int | None, typer.Option(help="Only this model version.")]
WindowOption = Annotated[str | None, typer.Option(help="The last 90s, 15m, 24h, 7d... (instead of --start).")]
StartOption = Annotated[dt.datetime | None, typer.Option(help="From this time (ISO 8601, UTC if no zone).")]
EndOption = Annotated[dt.datetime | None, typer.Option(help="Before this time (ISO 8601, UTC if no zone).")]


@monitor_app.command("predictions")
def predictions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment whose log to read.")],
    version: VersionOption = None,
    window: WindowOption = None,
    start: StartOption = None,
    end: EndOption = None,
    limit: Annotated[int, typer.Option(help="The most rows to show (1..10000).")] = 20,
    download: Annotated[
        Path | None, typer.Option(help="Write every matching row to this Parquet file instead.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Show a deployment's logged requests, oldest first: request id, version, time, latency,
    outlier score (with outlier_scores on), inputs and outputs (or download them all as Parquet)."""
    c = client(ctx)
    if download is not None:
        data = c.download_predictions(name, version=version, start=start, end=end, window=window)
        download.write_bytes(data)
        console.print(f"wrote {download} ({len(data)} bytes)")
        return None
    result = c.predictions(name, version=version, start=start, end=end, window=window, limit=limit)
    if json:
        return print_json(result)
    table(
        f"Predictions of {name}" + (" (more match: raise --limit or --download)" if result.truncated else ""),
        ["request id", "version", "time", "latency ms", "outlier", "inputs", "outputs"],
        [
            (
                p.request_id,
                p.version,
                p.time,
                f"{p.latency_ms:.2f}",
                _outlier(p.outlier_score, p.outlier),
                _short(p.inputs),
                _short(p.outputs),
            )
            for p in result.predictions
        ],
        keep=["request id", "version"],
        trim=True,
    )
    return None


def _outlier(score: float | None, flagged: bool | None) -> str:
    """``0.71 outlier``, ``0.43``, or ``-`` when not scored (outlier_scores off)."""
    if score is None:
        return "-"
    return f"{score:.2f}" + (" outlier" if flagged else "")


def _short(value: object, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@monitor_app.command("feedback")
def feedback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment the requests were sent to.")],
    csv_file: Annotated[
        Path, typer.Argument(help="CSV file with a request_id,label header.", exists=True, dir_okay=False)
    ],
    json: JsonOption = False,
) -> None:
    """Send the ground truth of answered requests (a CSV of request_id,label)."""
    result = client(ctx).feedback(name, csv_file)
    if json:
        return print_json(result)
    console.print(f"{result.accepted} label(s) stored for {name}")
    if result.unknown_request_ids:
        unknown = len(result.unknown_request_ids)
        console.print(
            f"[yellow]{unknown} request id(s) not in the prediction log, not stored:[/] "
            + ", ".join(result.unknown_request_ids[:20])
            + (" ..." if len(result.unknown_request_ids) > 20 else "")
        )
    return None


@monitor_app.command("performance")
def performance(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment to score.")],
    window: WindowOption = None,
    start: StartOption = None,
    end: EndOption = None,
    json: JsonOption = False,
) -> None:
    """Show each version's live performance: its logged answers scored against feedback."""
    result = client(ctx).performance(name, start=start, end=end, window=window)
    if json:
        return print_json(result)
    names = sorted({k for v in result.versions for k in v.metrics})
    table(
        f"Performance of {name}",
        ["version", "task", "labelled rows", *names],
        [
            (
                v.version,
                v.task,
                v.labelled_rows,
                *(_metric(v.metrics.get(k)) if k in v.metrics else "" for k in names),
            )
            for v in result.versions
        ],
        keep=["version", "labelled rows"],
    )
    for v in result.versions:
        for note in v.notes:
            console.print(f"v{v.version}: {note}")
    return None


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@monitor_app.command("drift")
def drift(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment to check.")],
    window: WindowOption = None,
    start: StartOption = None,
    end: EndOption = None,
    psi_threshold: Annotated[
        float | None, typer.Option(help="Drifted when PSI >= this (default 0.2).")
    ] = None,
    min_rows: Annotated[
        int | None, typer.Option(help="Fewest live values for a flag (default 1000).")
    ] = None,
    all_features: Annotated[
        bool, typer.Option("--all", help="Show every feature, not only the drifted ones.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Show each served version's drift: per feature and output, its score against the version's
    reference and whether it drifted (the drifted ones, or --all)."""
    overrides = {
        k: v for k, v in {"psi_threshold": psi_threshold, "min_rows": min_rows}.items() if v is not None
    }
    result = client(ctx).drift(name, start=start, end=end, window=window, **overrides)
    if json:
        return print_json(result)
    for v in result.versions:
        if v.report is None:
            console.print(f"v{v.version}: {v.note}")
            continue
        report = v.report
        shown = [f for f in report.features if all_features or f.drifted]
        table(
            f"Drift of {name} v{v.version}: {len(report.drifted)} of {len(report.features)} drifted, "
            f"{report.rows} rows",
            ["feature", "role", "kind", "method", "score", "threshold", "drifted", "rows"],
            [
                (
                    f.name,
                    f.role,
                    f.kind,
                    f.method,
                    f"{f.score:.4f}",
                    f"{f.threshold:g}",
                    "yes" if f.drifted else "",
                    f.rows,
                )
                for f in shown
            ],
            keep=["feature", "score", "drifted"],
        )
        if v.note:
            console.print(f"v{v.version}: {v.note}")
    return None
