"""``aiaas models ...`` and ``aiaas register``: the registry from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table

__all__ = ["models_app", "register"]

models_app = typer.Typer(help="Models, versions, aliases and comparisons.", no_args_is_help=True)


@models_app.command("list")
def list_models(ctx: typer.Context, json: JsonOption = False) -> None:
    """List registered models."""
    models = client(ctx).list_models()
    if json:
        return print_json(models)
    table(
        "Models",
        ["name", "latest", "aliases", "description", "updated"],
        [
            (m.name, m.latest_version, m.aliases, m.description, m.updated_at.strftime("%F %T"))
            for m in models
        ],
    )


@models_app.command("show")
def show(ctx: typer.Context, name: str, json: JsonOption = False) -> None:
    """Show a model and its versions."""
    c = client(ctx)
    model, versions = c.get_model(name), c.list_versions(name)
    if json:
        return print_json(
            {
                "model": model.model_dump(mode="json"),
                "versions": [v.model_dump(mode="json") for v in versions],
            }
        )
    console.print(f"[bold]{model.name}[/]  {model.description}")
    if model.tags:
        console.print(f"tags: {model.tags}")
    _versions_table(versions)


@models_app.command("versions")
def versions(ctx: typer.Context, name: str, json: JsonOption = False) -> None:
    """List a model's versions."""
    items = client(ctx).list_versions(name)
    if json:
        return print_json(items)
    _versions_table(items)


@models_app.command("compare")
def compare(
    ctx: typer.Context,
    name: str,
    a: Annotated[str, typer.Argument(help="First version (number, alias or 'latest').")],
    b: Annotated[str, typer.Argument(help="Second version.")],
    json: JsonOption = False,
) -> None:
    """Compare two versions: metrics, parameters, signature, size, and agreement of their
    predictions on the first version's stored input example."""
    cmp = client(ctx).compare(name, a, b)
    if json:
        return print_json(cmp)
    va, vb = f"v{cmp.a.version}", f"v{cmp.b.version}"
    table(f"{name}: {va} vs {vb}", ["", va, vb, "delta"], _comparison_rows(cmp))
    if cmp.agreement:
        table(
            f"Agreement on {cmp.example_rows} example rows",
            ["output", "rows equal", "max |diff|"],
            [(g.output, f"{g.equal_fraction:.1%}", g.max_abs_diff) for g in cmp.agreement],
        )
    elif not cmp.same_signature:
        console.print("[yellow]signatures differ: predictions not compared[/]")
    else:
        console.print("[yellow]neither version has a stored input example: predictions not compared[/]")


@models_app.command("alias")
def alias(
    ctx: typer.Context,
    name: str,
    alias: Annotated[str, typer.Argument(help="Alias to set, e.g. production or staging.")],
    version: Annotated[int, typer.Argument(help="Version the alias should point at.")],
    json: JsonOption = False,
) -> None:
    """Point an alias at a version. Deployments following it switch; pointing it back rolls back."""
    result = client(ctx).set_alias(name, alias, version)
    if json:
        return print_json(result)
    was = f" (was v{result.previous_version})" if result.previous_version else ""
    console.print(f"{name}@{result.name} → v{result.version}{was}")


def register(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The model as an .onnx file.", exists=True, dir_okay=False)],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name (default: the file's stem).")] = "",
    example: Annotated[
        Path | None,
        typer.Option(
            help="JSON input example: V2 tensors [{name, datatype, shape, data}] or rows.", exists=True
        ),
    ] = None,
    metrics: Annotated[str | None, typer.Option(help="Metrics as JSON, e.g. '{\"accuracy\": 0.97}'.")] = None,
    params: Annotated[str | None, typer.Option(help="Parameters as JSON.")] = None,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    parent: Annotated[int | None, typer.Option(help="The version this one derives from.")] = None,
    json: JsonOption = False,
) -> None:
    """Register an .onnx file as the next version of a model (created if new)."""
    from aiaas.formats import decode_tensors

    example_value: Any = None
    if example is not None:
        data = _load_json(example.read_text(), "--example")
        is_tensors = isinstance(data, list) and data and isinstance(data[0], dict) and "datatype" in data[0]
        example_value = decode_tensors(data, field="example") if is_tensors else data
    with console.status(f"registering {file.name}..."):
        version = client(ctx).register_model(
            name or file.stem,
            file,
            example=example_value,
            metrics=_load_json(metrics, "--metrics") if metrics else None,
            params=_load_json(params, "--params") if params else None,
            description=description,
            source=str(file),
            parent_version=parent,
        )
    if json:
        return print_json(version)
    console.print(
        f"registered [bold]{version.model}[/] version [bold]{version.version}[/] "
        f"({version.artifact_size_bytes:,} bytes)"
    )
    _signature_table(version.signature)


def _load_json(text: str, option: str) -> Any:
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None


def _versions_table(items: list[Any]) -> None:
    table(
        "Versions",
        ["version", "status", "flavor", "aliases", "size", "metrics", "parent", "created"],
        [
            (
                v.version,
                v.status,
                v.flavor,
                ", ".join(v.aliases),
                f"{v.artifact_size_bytes:,} B",
                v.metrics,
                v.parent_version,
                v.created_at.strftime("%F %T"),
            )
            for v in items
        ],
    )


def _signature_table(signature: dict[str, Any]) -> None:
    rows = [("input", t["name"], t["datatype"], t["shape"], "") for t in signature.get("inputs", [])]
    rows += [
        ("output", t["name"], t["datatype"], t["shape"], ", ".join(map(str, t.get("classes") or [])))
        for t in signature.get("outputs", [])
    ]
    table("Signature", ["", "name", "datatype", "shape", "classes"], rows)


def _comparison_rows(cmp: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [
        ("size (bytes)", cmp.a.artifact_size_bytes, cmp.b.artifact_size_bytes, f"x{cmp.size_ratio:.3g}"),
        ("same signature", "", "", "yes" if cmp.same_signature else "no"),
    ]
    rows += [(f"metric {k}", v["a"], v["b"], v.get("delta")) for k, v in cmp.metrics.items()]
    rows += [(f"param {k}", v["a"], v["b"], v.get("delta")) for k, v in cmp.params.items()]
    return rows
