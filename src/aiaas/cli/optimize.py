"""``aiaas optimize MODEL[:VERSION]``: quantize, prune or distil a version, or search for the
fastest version within an accuracy budget, as a job with a progress bar."""

from __future__ import annotations

import json as jsonlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table
from aiaas.cli.training import exit_unless_succeeded, follow_with_progress

if TYPE_CHECKING:
    from aiaas.sdk import Client

__all__ = ["candidate_rows", "optimize", "print_reports"]

_METHODS = "dynamic_int8, static_int8, fp16, prune, distill"


def optimize(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="MODEL[:VERSION]", help="The version to optimize (default latest).")
    ],
    method: Annotated[
        str | None, typer.Option("--method", "-m", help=f"One of {_METHODS}.", show_default=False)
    ] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Try the methods; keep the fastest within --max-metric-drop.")
    ] = False,
    max_metric_drop: Annotated[
        float | None,
        typer.Option(help="--auto: the largest drop of accuracy (or r2) accepted, e.g. 0.01 = one point."),
    ] = None,
    candidates: Annotated[
        list[str] | None, typer.Option("--candidate", help="--auto: a method to try (repeat; default all).")
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A setting of the method as KEY=VALUE (repeat), e.g. --set sparsity=0.5 --set "
            "fine_tune_epochs=5; with --auto, METHOD.KEY=VALUE.",
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Evaluation dataset NAME[:VERSION] (default: the training data).")
    ] = None,
    register_as: Annotated[str | None, typer.Option(help="Register the result under this model.")] = None,
    alias: Annotated[str | None, typer.Option(help="Point this alias at the result.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the job with a progress bar until it ends.")
    ] = True,
    json: JsonOption = False,
) -> None:
    """Optimize a registered version as a job: each result is a new version whose parent is
    the source, with an optimization report (size, single-row and batch-32 latency measured
    beside the parent in the same run, accuracy on the validation split, agreement with the
    parent), shown again by `aiaas models compare`.

    Methods: **dynamic_int8** and **static_int8** (ONNX Runtime quantization; static is
    calibrated on a dataset: --set calibration_dataset=NAME), **fp16** (half-size weights),
    **prune** (--set sparsity=0.5 --set structured=true --set fine_tune_epochs=5: removes
    neurons and channels of mlp/cnn networks), **distill** (--set width_factor=0.4 --set
    temperature=4 --set alpha=0.7 --set epochs=40). **--auto --max-metric-drop 0.01** tries
    them all and keeps the fastest within one point of accuracy, printing every candidate.
    """
    if auto == (method is not None):
        raise typer.BadParameter("give either --method METHOD or --auto", param_hint="--method")
    name, _, version = ref.partition(":")
    fields: dict[str, Any] = {"dataset": dataset, "register_as": register_as, "alias": alias}
    if auto:
        fields.update(max_metric_drop=max_metric_drop, candidates=candidates or None)
    elif max_metric_drop is not None or candidates:
        raise typer.BadParameter("is for --auto", param_hint="--max-metric-drop/--candidate")
    c = client(ctx)
    job = c.optimize(
        name,
        _version(version),
        "auto" if auto else str(method),
        settings=_settings(settings or [], auto),
        **{k: v for k, v in fields.items() if v is not None},
    )
    if not wait:
        if json:
            return print_json(job)
        console.print(f"job [bold]{job.id}[/] queued: {job.spec.get('method')} of {name}", highlight=False)
        console.print(f"follow it: aiaas jobs logs -f {job.id}", highlight=False)
        return None
    job = follow_with_progress(c, job, quiet=json)
    rows = _candidates(c, job.id)
    if json:
        print_json({"job": job.model_dump(mode="json"), "candidates": rows})
    elif rows:
        table(
            f"Candidates of job {job.id} (parent {name}:{job.spec.get('version')})",
            ["method", "size x", "batch-32 ms", "speedup", "metric", "drop", "agree", "kept"],
            candidate_rows(rows),
            keep=["method"],
            trim=True,
        )
    exit_unless_succeeded(job)
    return None


def candidate_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Table rows of an optimization's candidates (the job's last metrics entry)."""
    out = []
    for row in rows:
        r = row.get("report")
        kept = "yes" if row.get("chosen") else ("no" if row.get("within_budget") else "over budget")
        if r is None:
            out.append((row["method"], "-", "-", "-", "-", "-", "-", f"failed: {row.get('error', '')}"))
            continue
        out.append(
            (
                row["method"],
                f"{r['size_ratio']:.2f}",
                f"{r['latency_32_ms']:.3f}",
                f"{r['speedup_32']:.2f}x",
                f"{r['metric']} {r['value']:.4f}",
                f"{r['metric_drop']:+.4f}",
                f"{r['agreement']:.1%}",
                kept,
            )
        )
    return out


def print_reports(versions: list[Any]) -> None:
    """The optimization report of each version that has one (``aiaas models compare``)."""
    for v in versions:
        opt = (v.lineage or {}).get("optimization")
        if not opt or not opt.get("report"):
            continue
        r, src = opt["report"], opt.get("source", {})
        table(
            f"v{v.version}: {opt.get('method')} of v{src.get('version')} (measured in one run beside it)",
            ["", f"v{src.get('version')} (parent)", f"v{v.version}", "ratio"],
            [
                ("size bytes", r["parent_size_bytes"], r["size_bytes"], f"{r['size_ratio']:.2f}x smaller"),
                (
                    "latency 1 row ms",
                    f"{r['parent_latency_1_ms']:.3f}",
                    f"{r['latency_1_ms']:.3f}",
                    _speed(r["parent_latency_1_ms"] / max(r["latency_1_ms"], 1e-9)),
                ),
                (
                    "latency 32 rows ms",
                    f"{r['parent_latency_32_ms']:.3f}",
                    f"{r['latency_32_ms']:.3f}",
                    _speed(r["speedup_32"]),
                ),
                (
                    r["metric"],
                    f"{r['parent_value']:.4f}",
                    f"{r['value']:.4f}",
                    f"drop {r['metric_drop']:+.4f}",
                ),
                ("parameters", r.get("parent_parameters"), r.get("parameters"), ""),
                ("agreement", "", f"{r['agreement']:.1%}", f"of {r['validation_rows']} rows"),
            ],
            keep=["size bytes"],
        )


def _speed(ratio: float) -> str:
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def _candidates(c: Client, job_id: int) -> list[dict[str, Any]]:
    for entry in reversed(c.job_metrics(job_id)):
        if "candidates" in entry.metrics:
            return list(entry.metrics["candidates"])
    return []


def _version(text: str) -> int | str:
    if not text:
        return "latest"
    return int(text) if text.isdigit() else text


def _settings(pairs: list[str], auto: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE; got {pair!r}", param_hint="--set")
        try:
            value = jsonlib.loads(raw)
        except ValueError:
            value = raw  # plain text: a dataset name
        if auto:
            method, dot, key = key.partition(".")
            if not dot:
                raise typer.BadParameter(
                    f"with --auto, write METHOD.KEY=VALUE; got {pair!r}", param_hint="--set"
                )
            out.setdefault(method, {})[key] = value
        else:
            out[key] = value
    return out
