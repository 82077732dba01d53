"""``aiaas models ...`` and ``aiaas register``: the registry from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, fmt, print_json, print_pairs, table

if TYPE_CHECKING:
    from aiaas import schemas

__all__ = ["models_app", "register"]

models_app = typer.Typer(
    help="Models and their versions: show, compare, alias, roll back, download, archive, delete.",
    no_args_is_help=True,
)

RefArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME[:VERSION]",
        help="A model, or one version of it: a number, an alias or 'latest' (flowers:2, flowers:production).",
    ),
]
VersionArgument = Annotated[
    str, typer.Argument(metavar="NAME:VERSION", help="One version of a model by number, e.g. flowers:2.")
]


@models_app.command("list")
def list_models(ctx: typer.Context, json: JsonOption = False) -> None:
    """List registered models."""
    models = client(ctx).list_models()
    if json:
        return print_json(models)
    table(
        "Models",
        ["name", "latest", "aliases", "description", "updated"],
        [(m.name, m.latest_version, _aliases_text(m.aliases), m.description, m.updated_at) for m in models],
        keep=["name", "latest"],
    )


@models_app.command("show")
def show(ctx: typer.Context, ref: RefArgument, json: JsonOption = False) -> None:
    """Show a model with its aliases and versions, or one version in full: metrics, parameters,
    lineage (the job, dataset and parent it came from) and signature."""
    name, version_ref = _split(ref)
    c = client(ctx)
    if version_ref is not None:
        version = c.get_version(name, version_ref)
        if json:
            return print_json(version)
        _show_version(version)
        return None
    model, versions, aliases = c.get_model(name), c.list_versions(name), c.list_aliases(name)
    if json:
        return print_json(
            {
                "model": model.model_dump(mode="json"),
                "aliases": [a.model_dump(mode="json") for a in aliases],
                "versions": [v.model_dump(mode="json") for v in versions],
            }
        )
    console.print(f"[bold]{escape(model.name)}[/]  {escape(model.description)}", highlight=False)
    if model.tags:
        console.print(f"tags: {fmt(model.tags)}", highlight=False)
    for a in aliases:
        was = f" (was v{a.previous_version})" if a.previous_version else ""
        console.print(f"@{a.name} → v{a.version}{was}", highlight=False)
    _versions_table(versions)
    return None


@models_app.command("versions")
def versions(ctx: typer.Context, name: str, json: JsonOption = False) -> None:
    """List a model's versions, with their metrics and lineage."""
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
    if cmp.feature_importance:
        table(
            "Feature importance (permutation, validation split)",
            ["feature", va, vb, "delta"],
            [(f, e.get("a"), e.get("b"), e.get("delta")) for f, e in _by_importance(cmp.feature_importance)],
        )
    from aiaas.cli.optimize import print_reports

    print_reports([cmp.a, cmp.b])


def _by_importance(importance: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Features, the most important (in either version) first."""
    return sorted(importance.items(), key=lambda p: -max(abs(p[1].get("a") or 0), abs(p[1].get("b") or 0)))


@models_app.command("alias")
def alias(
    ctx: typer.Context,
    name: str,
    alias: Annotated[str, typer.Argument(help="Alias to set, e.g. production or staging.")],
    version: Annotated[int, typer.Argument(help="Version the alias should point at.")],
    json: JsonOption = False,
) -> None:
    """Point an alias at a version. Deployments following it switch; `aiaas models rollback`
    points it back."""
    from aiaas.errors import NotFound

    c = client(ctx)
    try:
        before = next((a.version for a in c.list_aliases(name) if a.name == alias), None)
    except NotFound:
        before = None  # set_alias names the missing model
    result = c.set_alias(name, alias, version)
    if json:
        return print_json(result)
    if before == result.version:
        change = " (unchanged)"
    elif before is None:
        change = " (new alias)"
    else:
        change = f" (was v{before})"
    console.print(f"{name}@{result.name} → v{result.version}{change}", highlight=False)
    return None


@models_app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: str,
    alias: Annotated[str, typer.Argument(help="The alias to move back, e.g. production.")],
    json: JsonOption = False,
) -> None:
    """Move an alias back to the version it pointed at before its last move. Deployments
    following it switch back; running it again moves it forward again."""
    from aiaas.errors import Conflict, NotFound

    c = client(ctx)
    current = next((a for a in c.list_aliases(name) if a.name == alias), None)
    if current is None:
        raise NotFound(
            f"model {name!r} has no alias {alias!r}; see its aliases with: aiaas models show {name}",
            details={"model": name, "alias": alias},
        )
    if current.previous_version is None:
        raise Conflict(
            f"{name}@{alias} has pointed at v{current.version} only; there is nothing to roll back to "
            f"(point it elsewhere with: aiaas models alias {name} {alias} VERSION)",
            details={"model": name, "alias": alias, "version": current.version},
        )
    result = c.set_alias(name, alias, current.previous_version)
    if json:
        return print_json(result)
    console.print(f"{name}@{alias} rolled back: v{current.version} → v{result.version}", highlight=False)
    return None


@models_app.command("unalias")
def unalias(
    ctx: typer.Context,
    name: str,
    alias: Annotated[str, typer.Argument(help="The alias to delete.")],
) -> None:
    """Delete an alias (refused while a deployment follows it). Its versions stay."""
    client(ctx).delete_alias(name, alias)
    console.print(f"deleted alias {name}@{alias}", highlight=False)


@models_app.command("archive")
def archive(ctx: typer.Context, ref: VersionArgument, json: JsonOption = False) -> None:
    """Archive a version: it stays stored and listed, but can no longer take an alias or be
    deployed (refused while a deployment serves it)."""
    name, number = _split_number(ref)
    version = client(ctx).archive_version(name, number)
    if json:
        return print_json(version)
    console.print(f"archived {name} version {number}", highlight=False)
    return None


@models_app.command("delete")
def delete(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="NAME[:VERSION]",
            help="A version (flowers:2) or, without :VERSION, the model and all its versions.",
        ),
    ],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before deleting a whole model.")
    ] = False,
) -> None:
    """Delete one version, or a whole model with every version (refused while deployed).

    A deleted version number is never given to another version.
    """
    name, _, number = ref.partition(":")
    c = client(ctx)
    if number:
        version = _number(number, ref)
        c.delete_version(name, version)
        console.print(f"deleted {name} version {version}", highlight=False)
        return
    if not yes:
        count = len(c.list_versions(name))
        typer.confirm(f"delete model {name!r} and its {count} version(s)?", abort=True, err=True)
    c.delete_model(name)
    console.print(f"deleted model {name}", highlight=False)


@models_app.command("download")
def download(
    ctx: typer.Context,
    ref: RefArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File to write (default: NAME-vVERSION.onnx here); '-' for stdout."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Download a version's ONNX file (default: the latest version)."""
    import sys

    name, version_ref = _split(ref)
    c = client(ctx)
    version = c.get_version(name, version_ref or "latest")
    data = c.download_artifact(name, version.version)
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = output or Path(f"{name}-v{version.version}.onnx")
    if path.exists() and not force:
        raise typer.BadParameter(f"{path} exists; give --force to overwrite it", param_hint="--output")
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    tmp.replace(path)  # never a half-written model file under the final name
    console.print(
        f"wrote {path} ({len(data):,} bytes): {name} version {version.version}, "
        f"sha256:{version.artifact_digest[:12]}",
        highlight=False,
    )


def register(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="The model: an .onnx file, or a Hugging Face model folder (config.json, "
            "*.safetensors, tokenizer files).",
            exists=True,
        ),
    ],
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
    flavor: Annotated[
        str | None,
        typer.Option(help="For a folder: hf-causal-lm or hf-embedding (default: read from the folder)."),
    ] = None,
    reference_dataset: Annotated[
        str | None,
        typer.Option(
            help="Dataset (NAME or NAME:VERSION) the version's drift is measured against "
            "(default: its first traffic)."
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Register an .onnx file or a model folder as the next version of a model (created if new)."""
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
            flavor=flavor,
            reference_dataset=reference_dataset,
        )
    if json:
        return print_json(version)
    console.print(
        f"registered [bold]{version.model}[/] version [bold]{version.version}[/] "
        f"({version.artifact_size_bytes:,} bytes)"
    )
    _signature_table(version.signature)


def _split(ref: str) -> tuple[str, str | None]:
    """``flowers`` → (flowers, None); ``flowers:2`` / ``flowers:production`` → (flowers, ref)."""
    name, sep, version = ref.partition(":")
    if sep and not version:
        raise typer.BadParameter(
            f"expected NAME or NAME:VERSION (a number, alias or 'latest'); got {ref!r}",
            param_hint="NAME[:VERSION]",
        )
    return name, version or None


def _split_number(ref: str) -> tuple[str, int]:
    name, _, number = ref.partition(":")
    return name, _number(number, ref)


def _number(text: str, ref: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise typer.BadParameter(
            f"expected NAME:VERSION with a version number, such as flowers:2; got {ref!r}",
            param_hint="NAME:VERSION",
        )
    return int(text)


def _load_json(text: str, option: str) -> Any:
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None


def _aliases_text(aliases: dict[str, int]) -> str | None:
    return ", ".join(f"{a}→v{v}" for a, v in sorted(aliases.items())) or None


def _lineage(v: schemas.ModelVersion) -> str:
    """Where a version came from, in a few words: the job and data that made it, its parent."""
    parts = []
    lineage = v.lineage or {}
    if lineage.get("job") is not None:
        dataset = lineage.get("dataset") or {}
        parts.append(f"job {lineage['job']} on {dataset.get('name')}:{dataset.get('version')}")
    if v.parent_version is not None:
        parts.append(f"from v{v.parent_version}")
    elif (lineage.get("parent") or {}).get("model"):
        parent = lineage["parent"]
        parts.append(f"from {parent['model']}:{parent['version']}")
    return ", ".join(parts) or "-"  # an upload's source file is in `models show NAME:VERSION`


def _versions_table(items: list[schemas.ModelVersion]) -> None:
    table(
        "Versions",
        ["ver", "status", "aliases", "metrics", "lineage", "created"],
        [
            (v.version, v.status, ", ".join(v.aliases) or None, v.metrics, _lineage(v), v.created_at)
            for v in items
        ],
        keep=["ver", "status"],
    )


def _show_version(v: schemas.ModelVersion) -> None:
    lineage = v.lineage or {}
    dataset = lineage.get("dataset") or {}
    pairs: list[tuple[str, Any]] = [
        ("model", v.model),
        ("version", v.version),
        ("status", v.status),
        ("aliases", ", ".join(v.aliases) or None),
        ("flavor", v.flavor),
        ("size", f"{v.artifact_size_bytes:,} bytes"),
        ("digest", f"sha256:{v.artifact_digest}"),
        ("created", v.created_at),
        ("description", v.description or None),
        ("source", v.source or None),
        ("parent", f"v{v.parent_version}" if v.parent_version is not None else None),
        ("metrics", v.metrics),
        ("params", v.params),
    ]
    if lineage:
        parent = lineage.get("parent") or {}
        pairs += [
            ("job", lineage.get("job")),
            ("dataset", f"{dataset.get('name')}:{dataset.get('version')}" if dataset else None),
            ("family", lineage.get("family")),
            ("task", lineage.get("task")),
            ("target", lineage.get("target")),
            ("features", lineage.get("feature_names")),
            ("classes", lineage.get("classes")),
            ("warm start", f"{parent['model']}:{parent['version']}" if parent.get("model") else None),
        ]
    print_pairs(f"{v.model} version {v.version}", pairs)
    _signature_table(v.signature)


def _signature_table(signature: dict[str, Any]) -> None:
    rows = [("input", t["name"], t["datatype"], _shape(t["shape"]), "") for t in signature.get("inputs", [])]
    rows += [
        ("output", t["name"], t["datatype"], _shape(t["shape"]), ", ".join(map(str, t.get("classes") or [])))
        for t in signature.get("outputs", [])
    ]
    table("Signature", ["", "name", "datatype", "shape", "classes"], rows, keep=["name", "datatype", "shape"])


def _shape(shape: list[Any]) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def _comparison_rows(cmp: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [
        ("size (bytes)", cmp.a.artifact_size_bytes, cmp.b.artifact_size_bytes, f"x{cmp.size_ratio:.3g}"),
        ("same signature", "", "", "yes" if cmp.same_signature else "no"),
    ]
    rows += [(f"metric {k}", v["a"], v["b"], v.get("delta")) for k, v in cmp.metrics.items()]
    rows += [(f"param {k}", v["a"], v["b"], v.get("delta")) for k, v in cmp.params.items()]
    return rows
