"""``aiaas retraining ...``: a deployment's retraining policy (drift or live accuracy → a job →
a held-out evaluation → a guarded canary) and the history of its runs."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml  # type: ignore[import-untyped]

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table
from aiaas.cli.rollouts import _guard, _steps

__all__ = ["retraining_app"]

retraining_app = typer.Typer(
    help="Retraining loops: when drift or live accuracy crosses a threshold, train on the newest data "
    "(warm start), evaluate against the served version on held-out data, and roll the result out as a "
    "guarded canary, or discard it with the reason.",
    no_args_is_help=True,
)

_TRIGGER_HELP = (
    "'METRIC OP THRESHOLD window=5m', such as 'drift_share > 0.5 window=5m', 'drift[petal_length] > 0.2 "
    "window=10m' or 'accuracy < 0.8 window=1h' (metrics: drift_share, drift, accuracy, f1)."
)


def _trigger(text: str) -> dict[str, Any]:
    guard = _guard(text)
    window = guard.pop("window", None)
    op = guard.pop("op", None)
    wanted = "<" if guard["metric"] in ("accuracy", "f1") else ">"
    if op != wanted:
        raise typer.BadParameter(
            f"{guard['metric']} triggers when it is {wanted} the threshold: "
            f"write {guard['metric']} {wanted} THRESHOLD",
            param_hint="--trigger",
        )
    guard.pop("for", None)
    if "name" in guard:
        raise typer.BadParameter("a trigger has no name", param_hint="--trigger")
    return {**guard, **({"window": window} if window is not None else {})}


@retraining_app.command("set")
def set_policy(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="The whole policy as JSON or YAML (options override it)."),
    ] = None,
    trigger: Annotated[str | None, typer.Option(help=_TRIGGER_HELP)] = None,
    dataset: Annotated[str | None, typer.Option(help="Train on the newest version of this dataset.")] = None,
    feedback: Annotated[
        bool, typer.Option("--feedback", help="Train on the prediction log joined with its feedback.")
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Override the served version's epochs.")] = None,
    warm_start: Annotated[
        bool, typer.Option("--warm-start/--no-warm-start", help="Continue from the served version.")
    ] = True,
    tolerance: Annotated[
        float | None,
        typer.Option(help="How much worse than the served version on held-out data a candidate may be."),
    ] = None,
    eval_dataset: Annotated[
        str | None,
        typer.Option(help="Held-out data: the validation split of this dataset ('name[:version]')."),
    ] = None,
    steps: Annotated[str | None, typer.Option(help="The canary, such as '10:1m,100:1m'.")] = None,
    guard: Annotated[
        list[str] | None, typer.Option(help="A guard of the canary, repeatable (as in aiaas rollouts start).")
    ] = None,
    cooldown: Annotated[
        str | None, typer.Option(help="Least time from a run's end to the next (default 1h).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Set the deployment's retraining policy."""
    policy: dict[str, Any] = {}
    if file is not None:
        loaded = yaml.safe_load(file.read_text())
        if not isinstance(loaded, dict):
            raise typer.BadParameter("the policy file must hold a mapping", param_hint="--file")
        policy = loaded
    if trigger is not None:
        policy["trigger"] = _trigger(trigger)
    if dataset is not None or feedback:
        policy["data"] = {"dataset": dataset} if dataset is not None else {"feedback": True}
    training = dict(policy.get("training") or {})
    if epochs is not None:
        training["epochs"] = epochs
    if not warm_start:
        training["warm_start"] = False
    if training:
        policy["training"] = training
    evaluation = dict(policy.get("evaluation") or {})
    if tolerance is not None:
        evaluation["tolerance"] = tolerance
    if eval_dataset is not None:
        evaluation["dataset"] = eval_dataset
    if evaluation:
        policy["evaluation"] = evaluation
    rollout = dict(policy.get("rollout") or {})
    if steps is not None:
        rollout["steps"] = _steps(steps)
    if guard:
        rollout["guards"] = [_guard(g) for g in guard]
    if rollout:
        policy["rollout"] = rollout
    if cooldown is not None:
        policy["cooldown"] = cooldown
    result = client(ctx).set_retraining(name, policy)
    if json:
        return print_json(result)
    _show_policy(result)
    return None


def _show_policy(p: Any) -> None:
    t = p.trigger
    what = t["metric"] + (f"[{t['feature']}]" if t.get("feature") else "")
    source = (
        f"dataset {p.data['dataset']} (newest version)"
        if "dataset" in p.data
        else "prediction log + feedback"
    )
    console.print(
        f"retraining of {p.deployment}: when {what} {t['op']} {t['threshold']:g} over {t['window_s']:g}s"
    )
    console.print(f"  train on {source}; overrides {jsonlib.dumps(p.training) if p.training else 'none'}")
    held = p.evaluation.get("dataset") or "the training data's validation split"
    tolerance = p.evaluation.get("tolerance", 0)
    console.print(f"  keep if not worse than the served version by more than {tolerance:g} on {held}")
    ladder = " → ".join(f"{s['weight']}%" for s in p.rollout.get("steps", []))
    console.print(
        f"  canary {ladder}, {len(p.rollout.get('guards', []))} guard(s); cooldown {p.cooldown_s:g}s"
    )


@retraining_app.command("show")
def show(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The deployment.")], json: JsonOption = False
) -> None:
    """The deployment's retraining policy."""
    result = client(ctx).get_retraining(name)
    if json:
        return print_json(result)
    _show_policy(result)
    return None


@retraining_app.command("runs")
def runs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    limit: Annotated[int, typer.Option(help="The newest runs to show.")] = 5,
    json: JsonOption = False,
) -> None:
    """The deployment's retraining runs, newest first, each step with its time and reason."""
    result = client(ctx).list_retraining_runs(name, limit=limit)
    if json:
        return print_json(result)
    if not result:
        console.print(f"deployment {name} has no retraining run")
    for r in result:
        console.print(
            f"run {r.id} of {r.deployment}: {r.state} (served version {r.served_version}"
            + (f", candidate {r.version}" if r.version is not None else "")
            + (f", job {r.job_id}" if r.job_id is not None else "")
            + (f", rollout {r.rollout_id}" if r.rollout_id is not None else "")
            + ")"
        )
        table(
            f"Run {r.id}",
            ["time", "event", "reason"],
            [(e.at, e.kind, e.message) for e in r.events],
            keep=["event", "reason"],
        )
    return None


@retraining_app.command("delete")
def delete(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The deployment.")]) -> None:
    """Remove the deployment's retraining policy (a run under way finishes)."""
    client(ctx).delete_retraining(name)
    console.print(f"retraining policy of {name} deleted")
