"""``aiaas rollouts ...``: guarded rollouts of a new version, step by step, rolled back by guards."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table

__all__ = ["rollouts_app"]

rollouts_app = typer.Typer(
    help="Guarded rollouts: raise a new version's share of requests step by step, watched by guards "
    "(alert rules on the new version); promote it at 100 %, or move all traffic back when a guard fires.",
    no_args_is_help=True,
)

_GUARD = re.compile(
    r"^\s*(?P<metric>[A-Za-z0-9_]+)(?:\[(?P<feature>[^\]]+)\])?\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<threshold>[-+0-9.eE]+)(?P<rest>(?:\s+[a-z]+=\S+)*)\s*$"
)


@rollouts_app.command("start")
def start(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    version: Annotated[int, typer.Option(help="The new version of the deployment's model.")],
    steps: Annotated[
        str,
        typer.Option(
            help="Weights and bake times, increasing to 100, such as '10:5m,50:5m,100:10m' (the step at "
            "100 promotes; its bake is the promotion's guard window)."
        ),
    ],
    guard: Annotated[
        list[str] | None,
        typer.Option(
            help="A guard, repeatable: 'METRIC OP THRESHOLD window=30s [for=10s] [name=N]', such as "
            "'error_rate > 0.01 window=30s' or 'latency_p99 > 0.25 window=1m for=30s'."
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Start a guarded rollout of --version on the deployment."""
    rollout = client(ctx).start_rollout(
        name, version, steps=_steps(steps), guards=[_guard(g) for g in guard or []]
    )
    if json:
        return print_json(rollout)
    console.print(
        f"rollout {rollout.id} of version {rollout.version} on {name} started: "
        + " → ".join(f"{s.weight}%" for s in rollout.steps)
    )
    return None


@rollouts_app.command("list")
def list_rollouts(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The deployment.")], json: JsonOption = False
) -> None:
    """A deployment's rollouts, newest first."""
    result = client(ctx).list_rollouts(name)
    if json:
        return print_json(result)
    table(
        "Rollouts",
        ["id", "version", "from", "state", "weight", "created", "reason"],
        [
            (r.id, r.version, r.previous_version or "", r.state, r.weight, r.created_at, r.reason)
            for r in result
        ],
        keep=["id", "state"],
    )
    return None


@rollouts_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    rollout_id: Annotated[
        int | None, typer.Option("--id", help="This rollout (default: the newest).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """A rollout and each of its steps with its reason (started, baked, promoted, rolled back...)."""
    r = client(ctx).get_rollout(name, rollout_id)
    if json:
        return print_json(r)
    console.print(
        f"rollout {r.id} of {r.deployment}: version {r.previous_version} → {r.version} ({r.state}, "
        f"{r.weight}% now)" + (f": {r.reason}" if r.reason else "")
    )
    for g in r.guards:
        console.print(
            f"  guard {g.name}: {g.metric} {g.op} {g.threshold:g} over {g.window_s:g}s (rule {g.rule})"
        )
    table(
        "Steps",
        ["time", "step", "weight", "event", "reason"],
        [
            (
                e.at,
                "" if e.step is None else e.step,
                "" if e.weight is None else f"{e.weight}%",
                e.kind,
                e.message,
            )
            for e in r.events
        ],
        keep=["event", "reason"],
    )
    return None


@rollouts_app.command("abort")
def abort(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    rollout_id: Annotated[
        int | None, typer.Option("--id", help="This rollout (default: the newest).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Abort a rollout: the traffic goes back to the previous version at the driver's next pass."""
    r = client(ctx).abort_rollout(name, rollout_id)
    if json:
        return print_json(r)
    console.print(f"rollout {r.id} of {name}: {r.state}")
    return None


def _steps(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in text.split(","):
        weight, _, bake = part.strip().partition(":")
        try:
            out.append({"weight": int(weight), "bake": _duration(bake or "0")})
        except ValueError:
            raise typer.BadParameter(
                f"expected WEIGHT:BAKE such as 10:5m; got {part!r}", param_hint="--steps"
            ) from None
    return out


def _guard(text: str) -> dict[str, Any]:
    match = _GUARD.match(text)
    if match is None:
        raise typer.BadParameter(
            f"expected 'METRIC OP THRESHOLD window=30s [for=10s] [name=N]'; got {text!r}",
            param_hint="--guard",
        )
    guard: dict[str, Any] = {
        "metric": match["metric"],
        "op": match["op"],
        "threshold": float(match["threshold"]),
    }
    if match["feature"]:
        guard["feature"] = match["feature"]
    for option in match["rest"].split():
        key, _, value = option.partition("=")
        if key not in ("window", "for", "name"):
            raise typer.BadParameter(
                f"unknown guard option {key!r} (window, for, name)", param_hint="--guard"
            )
        guard[key] = value if key == "name" else _duration(value)
    return guard


def _duration(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
