"""``aiaas datasets ...``: register, list and inspect datasets from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table

__all__ = ["datasets_app"]

datasets_app = typer.Typer(
    help="Datasets: CSV/Parquet/JSONL files, text corpora or bundled samples, with schema, "
    "statistics and split.",
    no_args_is_help=True,
)

_SAMPLES = "iris, wine, breast_cancer, digits, diabetes"


@datasets_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name (created on its first version).")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="A CSV, Parquet or JSONL file, or a .txt corpus (a text dataset).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    sample: Annotated[str | None, typer.Option(help=f"A bundled sample: {_SAMPLES}.")] = None,
    target: Annotated[
        str | None, typer.Option(help="Label column; the other columns must then be numeric or bool.")
    ] = None,
    validation_fraction: Annotated[
        float, typer.Option(help="Share of rows in the validation split, in (0, 1).")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split (same file and seed, same split).")] = 0,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    text_column: Annotated[
        str | None, typer.Option(help="The column holding text: makes a text dataset (JSONL/CSV/Parquet).")
    ] = None,
    prompt_column: Annotated[
        str | None, typer.Option(help="Chat pairs: the prompt column (with --response-column).")
    ] = None,
    response_column: Annotated[
        str | None, typer.Option(help="Chat pairs: the response column (with --prompt-column).")
    ] = None,
    documents: Annotated[
        str | None,
        typer.Option(help="How a .txt corpus is cut: 'paragraph' (at blank lines, default) or 'line'."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Register a file or a bundled sample as the next version of a dataset."""
    if (file is None) == (sample is None):
        raise typer.BadParameter("give exactly one of --file PATH or --sample NAME", param_hint="--file")
    from aiaas.errors import NotFound

    what = file.name if file is not None else f"sample {sample}"
    c = client(ctx)
    try:
        latest_before = c.get_dataset(name).latest_version
    except NotFound:
        latest_before = None
    with console.status(f"uploading {what}..."):
        version = c.create_dataset(
            name,
            file,
            sample=sample,
            target=target,
            description=description,
            validation_fraction=validation_fraction,
            seed=seed,
            text_column=text_column,
            prompt_column=prompt_column,
            response_column=response_column,
            documents=documents,
        )
    if json:
        return print_json(version)
    # Versions are numbered upwards: an answer at or below the latest number seen before is
    # a version that already held this data (same file, target and split), not a new one.
    if latest_before is not None and version.version <= latest_before:
        console.print(
            f"nothing new stored: dataset [bold]{version.dataset}[/] version [bold]{version.version}[/] "
            f"already holds this data with the same target and split "
            f"(created {version.created_at.strftime('%F %T')})",
            highlight=False,
        )
        return None
    rows = f"{version.row_count:,} documents" if version.text else f"{version.row_count:,} rows"
    console.print(
        f"dataset [bold]{version.dataset}[/] version [bold]{version.version}[/]: "
        f"{rows}, {len(version.schema_)} columns, {version.format} "
        f"({version.size_bytes:,} bytes)"
    )
    _show_version(version)
    return None


@datasets_app.command("list")
def list_datasets(ctx: typer.Context, json: JsonOption = False) -> None:
    """List datasets."""
    items = client(ctx).list_datasets()
    if json:
        return print_json(items)
    table(
        "Datasets",
        ["name", "latest", "description", "updated"],
        [(d.name, d.latest_version, d.description, d.updated_at) for d in items],
        keep=["name", "latest"],
    )


@datasets_app.command("versions")
def versions(ctx: typer.Context, name: str, json: JsonOption = False) -> None:
    """List a dataset's versions."""
    items = client(ctx).list_dataset_versions(name)
    if json:
        return print_json(items)
    table(
        f"{name}: versions",
        ["version", "format", "rows", "columns", "target", "task", "size", "created"],
        [
            (
                v.version,
                v.format,
                v.row_count,
                len(v.schema_),
                v.target,
                v.task,
                f"{v.size_bytes:,} B",
                v.created_at,
            )
            for v in items
        ],
        keep=["version", "format", "rows", "columns", "task"],
    )


@datasets_app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="NAME[:VERSION]", help="Dataset, optionally :version (default latest).")
    ],
    json: JsonOption = False,
) -> None:
    """Show a dataset version: its schema with statistics, and its split."""
    name, _, number = ref.partition(":")
    if number and not (number.isdigit() or number == "latest"):
        raise typer.BadParameter(
            f"VERSION must be a number or 'latest'; got {number!r}", param_hint="NAME[:VERSION]"
        )
    version = client(ctx).get_dataset_version(name, int(number) if number.isdigit() else None)
    if json:
        return print_json(version)
    console.print(
        f"[bold]{version.dataset}[/] version [bold]{version.version}[/]  {version.description}\n"
        f"{version.row_count:,} rows, {version.format}, {version.size_bytes:,} bytes, "
        f"sha256:{version.artifact_digest[:12]}"
    )
    _show_version(version)


def _show_version(version: Any) -> None:
    stats = version.statistics.get("columns", {})
    table(
        "Schema",
        ["column", "dtype", "nulls", "min", "mean", "max", "values"],
        [_schema_row(c, stats.get(c.name, {}), version.target) for c in version.schema_],
        keep=["column", "dtype", "nulls", "min", "mean", "max"],
    )
    text = version.statistics.get("text")
    if version.text and text:
        kind = "chat pairs" if version.text.prompt_column else "text"
        cut = f", cut by {version.text.documents}" if version.text.documents else ""
        console.print(
            f"{kind} in {', '.join(version.text.columns)}{cut}: {text['documents']:,} documents, "
            f"{text['characters']:,} characters, {text['tokens']:,} tokens "
            "(min/mean/max of a text column: characters per document)"
        )
    split = version.split
    how = "stratified by the target" if split.stratified else "random"
    console.print(
        f"target: {version.target or '-'} ({version.task or 'no task hint'})\n"
        f"split: {split.train_rows} train / {split.validation_rows} validation, {how}, "
        f"seed {split.seed}, validation fraction {split.validation_fraction}"
    )


def _schema_row(column: Any, stats: dict[str, Any], target: str | None) -> tuple[Any, ...]:
    top = stats.get("top") or []
    if column.kind == "text":  # lengths in characters per document, not the documents themselves
        lengths = stats.get("characters_per_document") or {}
        return (
            column.name,
            _dtype(column),
            column.null_count,
            lengths.get("min"),
            lengths.get("mean"),
            lengths.get("max"),
            None,
        )
    distinct = stats.get("distinct_count")
    values = ", ".join(f"{t['value']} ({t['count']})" for t in top[:3])
    if distinct is not None:
        values = f"{distinct} distinct: {values}" if values else f"{distinct} distinct"
    return (
        f"{column.name} (target)" if column.name == target else column.name,
        _dtype(column),
        column.null_count,
        stats.get("min"),
        stats.get("mean"),
        stats.get("max"),
        values or None,
    )


def _dtype(column: Any) -> str:
    """``float64``; a column read as text or flags says so (``object (string)``)."""
    if column.kind == "numeric" or column.kind in column.dtype:
        return str(column.dtype)
    return f"{column.dtype} ({column.kind})"
