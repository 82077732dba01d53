"""Soak check of an anomaly rule with no threshold: minutes of steady traffic, then a slow version.

Issue 13 asks that a latency anomaly injected into a steady deployment (a slow version behind
the same name) be flagged by the Isolation Forest without any threshold being set, and that
steady noise over several minutes raise none. The end-to-end test
(``tests/e2e/test_anomaly.py``) checks it over one minute of steady traffic; several minutes
would cost every run of the suite, so the long check is this script, run by hand, its result
kept in ``benchmarks/results/``.

What it runs is the test's scenario, longer (the pieces are the test's own:
``tests/e2e/_anomaly_load.py`` and ``tests/e2e/conftest.py``):

1. a control plane and an inference server as real processes on a fresh home and SQLite
   database, metrics sampled every 0.2 s into 1 s rows, rules evaluated every 0.2 s;
2. a fast (one matrix product) and a slow (3,000 products, ~150 ms) version of one model
   registered, the fast one deployed, and the test's anomaly rule: Isolation Forest over
   latency p50/p99, error rate and throughput, 2 s windows against the 60 s before them, from
   15 windows on, ``for`` 4 s, no threshold and no contamination;
3. steady traffic (one request at a time, 10 ms apart) under pulses of CPU contention (one busy
   process per core, ``--on-s`` on, ``--off-s`` off) for ``--minutes`` of verdicts, polling the
   rule every ``--poll-s``: its state and value (the judged window's score minus the
   detector's boundary, above 0 anomalous) per window, and the load average;
4. contention stopped (as in the test), the slow version put behind the same name, and the time
   until the rule fires, from the switch and from the first request the slow version served;
5. afterwards, each judged window's metrics read back from the database, so a pending episode
   can be seen next to the windows that made it.

The result: windows judged, firing transitions in the steady phase (must be 0), pending
episodes (count, longest), time to fire, the load average. The machine is shared, so the load
average is part of the figure. The script exits 1 when the steady phase fired or the slow version
was never flagged.

Examples:
    PYTHONPATH=src .venv/bin/python benchmarks/anomaly_soak.py                 # 5 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/anomaly_soak.py --minutes 1 --output /tmp/soak.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the test's servers, model, traffic and contention

from tests._auth import ADMIN_KEY  # noqa: E402
from tests._servers import free_port, wait_until  # noqa: E402
from tests.conftest import fresh_database, server_environment  # noqa: E402
from tests.e2e._anomaly_load import FAST_EVALUATION, RULE, SLOW, Contention, Traffic, matmuls  # noqa: E402
from tests.e2e.conftest import start_api, start_inference  # noqa: E402

from aiaas.sdk import Client  # noqa: E402

NAME = "steady"
RULE_NAME = "odd-latency"


class Watcher:
    """Polls the rule from a thread: every reply (monotonic time, state, value, evaluated_at)
    and the load average every ``load_every_s``."""

    def __init__(self, client: Client, poll_s: float, load_every_s: float = 15.0) -> None:
        self.polls: list[dict[str, Any]] = []
        self.loads: list[dict[str, Any]] = []
        self._stop = threading.Event()

        def run() -> None:
            last_load = 0.0
            while not self._stop.is_set():
                now = time.monotonic()
                if now - last_load >= load_every_s:
                    self.loads.append({"t": now, "load": os.getloadavg()})
                    last_load = now
                rule = client.get_alert_rule(RULE_NAME)
                self.polls.append(
                    {
                        "t": now,
                        "state": rule.state,
                        "value": rule.value,
                        "evaluated_at": rule.evaluated_at.isoformat() if rule.evaluated_at else None,
                    }
                )
                self._stop.wait(poll_s)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def episodes(events: list[dict[str, Any]], until: dt.datetime) -> list[dict[str, Any]]:
    """Pending episodes from the rule's transitions (oldest first): when each began, how it
    ended (inactive, firing, or still pending at ``until``), how long it lasted, and why."""
    found: list[dict[str, Any]] = []
    for i, event in enumerate(events):
        if event["state"] != "pending":
            continue
        began = dt.datetime.fromisoformat(event["at"])
        after = next((e for e in events[i + 1 :] if e["state"] != "pending"), None)
        ended = dt.datetime.fromisoformat(after["at"]) if after else until
        found.append(
            {
                "at": event["at"],
                "ended_by": after["state"] if after else "still pending",
                "seconds": (ended - began).total_seconds(),
                "value": event["value"],
                "reason": event["reason"],
            }
        )
    return found


def judged_windows(
    home: Path, url: str, polls: list[dict[str, Any]], until: dt.datetime, metrics: tuple[str, ...]
) -> list[dict[str, Any]]:
    """One entry per window the rule judged up to ``until``: its end, its score (the rule's value,
    kept by the judge until the next window is complete), the rule's state, and its metrics read
    back from the database as the judge reads them."""
    from aiaas.alerts.anomaly import AnomalyJudge
    from aiaas.alerts.series import Scope
    from aiaas.config import Settings
    from aiaas.platform import open_platform

    platform = open_platform(Settings(home=home, database_url=url), migrate=False)
    try:
        judge = AnomalyJudge(
            platform.metrics,
            interval_s=float(FAST_EVALUATION["AIAAS_METRICS_INTERVAL_S"]),
            lag_s=float(FAST_EVALUATION["AIAAS_METRICS_FLUSH_INTERVAL_S"]),
        )
        window_s = float(RULE["window"].rstrip("s"))
        by_end: dict[dt.datetime, dict[str, Any]] = {}
        for poll in polls:
            if poll["evaluated_at"] is None or poll["value"] is None:
                continue
            at = dt.datetime.fromisoformat(poll["evaluated_at"])
            if at <= until:
                by_end[judge.end_of_windows(at)] = {"value": poll["value"], "state": poll["state"]}
        scope = Scope(NAME, None, None, None)
        return [
            {
                "end": end.isoformat(),
                **by_end[end],
                "metrics": dict(
                    zip(metrics, judge.windows(metrics, scope, end, window_s, 1)[0], strict=True)
                ),
            }
            for end in sorted(by_end)
        ]
    finally:
        platform.close()


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario of the module's docstring; return the raw figures."""
    os.environ["AIAAS_API_KEY"] = ADMIN_KEY
    home = Path(tempfile.mkdtemp(prefix="aiaas-anomaly-soak-"))
    try:
        return _soak(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _soak(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"minutes": args.minutes, "rule": {**RULE}}
    with fresh_database("sqlite", home) as url:  # the control plane migrates it on start
        inference_port = free_port()
        env = {
            **server_environment(home, url),
            "AIAAS_INFERENCE_PORT": str(inference_port),
            **FAST_EVALUATION,
        }
        api = start_api(env, home, free_port())
        inference = start_inference(env, home, inference_port)
        client = Client(api.url, inference_url=inference.url)
        watcher_client = Client(api.url, inference_url=inference.url)
        traffic: Traffic | None = None
        contention: Contention | None = None
        watcher: Watcher | None = None
        try:
            client.register_model(NAME, matmuls(1))
            client.register_model(NAME, matmuls(SLOW))
            client.deploy(NAME, model=NAME, version=1)
            client.wait_until_served(NAME, 1)
            rule = client.create_anomaly_rule(RULE_NAME, deployment=NAME, **RULE)
            assert rule.threshold == 0.0 and rule.anomaly is not None and rule.anomaly.contamination is None
            metrics = tuple(rule.anomaly.metrics)
            result["metrics"] = list(metrics)
            start = time.monotonic()
            traffic = Traffic(inference.url, NAME)
            contention = Contention(args.on_s, args.off_s)
            watcher = Watcher(watcher_client, args.poll_s)

            wait_until(
                lambda: client.get_alert_rule(RULE_NAME).value is not None, timeout=180, what="a verdict"
            )
            first = client.get_alert_rule(RULE_NAME).evaluated_at
            assert first is not None
            result["history_filled_s"] = time.monotonic() - start
            steady_s = args.minutes * 60

            def judged_long_enough() -> bool:
                at = client.get_alert_rule(RULE_NAME).evaluated_at
                return at is not None and (at - first).total_seconds() >= steady_s

            wait_until(judged_long_enough, timeout=steady_s * 2 + 60, what="the steady phase", poll=0.5)
            contention.close()
            steady_end = client.get_alert_rule(RULE_NAME).evaluated_at
            assert steady_end is not None
            steady_events = [e.state for e in client.list_alerts(rule=RULE_NAME, limit=1000)]
            switch_t = time.monotonic()
            switch_at = dt.datetime.now(dt.UTC)
            client.update_deployment(NAME, version=2)
            client.wait_until_served(NAME, 2)
            served_t = time.monotonic()
            fired: float | None = None
            try:
                wait_until(
                    lambda: client.get_alert_rule(RULE_NAME).state == "firing",
                    timeout=args.fire_timeout_s,
                    what="the anomaly to fire",
                    poll=0.05,
                )
                fired = time.monotonic()
            except AssertionError:
                pass
            result["switch"] = {
                "at": switch_at.isoformat(),
                "served_after_s": served_t - switch_t,
                "fired_after_switch_s": None if fired is None else fired - switch_t,
                "fired_after_served_s": None if fired is None else fired - served_t,
            }
            events: list[dict[str, Any]] = [
                {
                    "state": e.state,
                    "at": e.at.isoformat(),
                    "value": e.value,
                    "reason": e.reason,
                    "anomaly": e.anomaly,
                }
                for e in reversed(client.list_alerts(rule=RULE_NAME, limit=1000))
            ]
        finally:
            if watcher is not None:
                watcher.stop()
            if contention is not None:
                contention.close()
            if traffic is not None:
                traffic.stop()
            client.close()
            watcher_client.close()
            inference.stop()
            api.stop()

        steady = [e for e in events if dt.datetime.fromisoformat(e["at"]) < switch_at]
        pendings = episodes(steady, switch_at)
        polls = watcher.polls if watcher else []
        windows = judged_windows(home, url, polls, steady_end, metrics)
        values = [w["value"] for w in windows]
        loads = [entry["load"] for entry in (watcher.loads if watcher else [])]
        result.update(
            windows_judged=len(windows),
            steady_seconds=(steady_end - first).total_seconds(),
            steady_firing=steady_events.count("firing"),
            anomalous_windows=sum(v > 0 for v in values),
            score_max=max(values) if values else None,
            score_median=statistics.median(values) if values else None,
            pending_episodes=len(pendings),
            pending_longest_s=max((p["seconds"] for p in pendings), default=0.0),
            pendings=pendings,
            requests=traffic.sent if traffic else 0,
            failed=traffic.failed if traffic else 0,
            load_1m={
                "min": min(x[0] for x in loads),
                "median": statistics.median(x[0] for x in loads),
                "max": max(x[0] for x in loads),
            }
            if loads
            else None,
            loads=loads,
            events=events,
            windows=windows,
            cpus=os.cpu_count(),
        )
    return result


def report(r: dict[str, Any]) -> str:
    """The markdown report of one soak run."""
    switch = r.get("switch", {})
    fire = switch.get("fired_after_switch_s")
    load = r["load_1m"] or {"min": float("nan"), "median": float("nan"), "max": float("nan")}
    ok_steady = r["steady_firing"] == 0
    lines = [
        f"# Anomaly rule soak, {r['date']}",
        "",
        f"`{r['command']}` at commit `{r['commit']}`, {r['cpus']} CPUs (shared machine).",
        "",
        "Rule: Isolation Forest over "
        + ", ".join(r["metrics"])
        + f"; window {r['rule']['window']}, training "
        f"window {r['rule']['training_window']}, min history {r['rule']['min_history']}, "
        f"for {r['rule']['for_']};"
        " no threshold, no contamination. Steady traffic under CPU contention pulses "
        f"({r['on_s']:g} s on / {r['off_s']:g} s off, one busy process per core).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| steady phase (verdicts from the first to the last) | {r['steady_seconds']:.0f} s |",
        f"| windows judged in the steady phase | {r['windows_judged']} |",
        f"| **firing transitions in the steady phase** (must be 0) | **{r['steady_firing']}**"
        f" {'✅' if ok_steady else '❌'} |",
        f"| anomalous verdicts (score above the boundary) | {r['anomalous_windows']} |",
        f"| pending episodes | {r['pending_episodes']} (longest {r['pending_longest_s']:.1f} s; `for` is "
        f"{r['rule']['for_']}) |",
        f"| score minus boundary: median, max | {r['score_median']:.3f}, {r['score_max']:.3f} |",
        f"| slow version served after the switch | {switch.get('served_after_s', float('nan')):.1f} s |",
        "| **time to fire after the switch** | "
        + (
            f"**{fire:.1f} s** ({switch['fired_after_served_s']:.1f} s after it served) ✅"
            if fire
            else "never ❌"
        )
        + " |",
        f"| requests sent, failed | {r['requests']}, {r['failed']} |",
        f"| load average (1 min) during the run: min, median, max | {load['min']:.2f}, {load['median']:.2f}, "
        f"{load['max']:.2f} |",
        "",
    ]
    if r["pendings"]:
        lines += [
            "## Pending episodes in the steady phase",
            "",
            "| at | lasted | ended by | why |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {p['at'][11:19]} | {p['seconds']:.1f} s | {p['ended_by']} | {p['reason']} |"
            for p in r["pendings"]
        ]
        lines.append("")
    lines += [
        "Every judged window (score, metrics) and every transition: the `.json` beside this file.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of steady verdicts (default 5)")
    parser.add_argument(
        "--on-s", type=float, default=4.0, help="seconds of each contention pulse (default 4)"
    )
    parser.add_argument("--off-s", type=float, default=4.0, help="seconds between pulses (default 4)")
    parser.add_argument(
        "--poll-s", type=float, default=0.2, help="seconds between polls of the rule (default 0.2)"
    )
    parser.add_argument(
        "--fire-timeout-s",
        type=float,
        default=120.0,
        help="how long to wait for the slow version to fire (120)",
    )
    parser.add_argument("--output", type=Path, help="report path (default: results/anomaly-soak-<date>.md)")
    args = parser.parse_args(argv)
    date = dt.date.today().isoformat()
    output = args.output or HERE / "results" / f"anomaly-soak-{date}.md"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result = soak(args)
    result.update(
        date=date,
        on_s=args.on_s,
        off_s=args.off_s,
        commit=commit.stdout.strip(),
        command="benchmarks/anomaly_soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    text = report(result)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    output.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    print(text, flush=True)
    fired = result.get("switch", {}).get("fired_after_switch_s") is not None
    return 0 if result["steady_firing"] == 0 and fired else 1


if __name__ == "__main__":
    raise SystemExit(main())
