"""``aiaas up``, ``aiaas api``, ``aiaas serve`` and ``aiaas db``: running the platform itself."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.panel import Panel

from aiaas.cli.output import console, err
from aiaas.processes import die_with_parent

__all__ = ["api", "db_app", "serve", "up"]

db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)

HostOption = Annotated[str | None, typer.Option(help="Interface to bind (AIAAS_HOST, default 127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option(help="Control plane port (AIAAS_PORT, default 8000).")]
InferencePortOption = Annotated[
    int | None, typer.Option(help="Inference server port (AIAAS_INFERENCE_PORT, default 8080).")
]
HomeOption = Annotated[
    Path | None, typer.Option(help="Where the embedded DB and artifacts live (AIAAS_HOME, default ~/.aiaas).")
]

_READY_TIMEOUT_S = 120.0
#: Wait before restarting a server that exited; doubled each time it exits again soon after
#: a restart, up to :data:`_RESTART_BACKOFF_MAX_S`, so a crash loop costs little CPU and
#: fills the terminal slowly. ``up`` never gives up: the other server keeps serving.
_RESTART_BACKOFF_FIRST_S = 0.25
_RESTART_BACKOFF_MAX_S = 30.0
#: A server that ran this long before exiting is restarted after the first delay again.
_STABLE_AFTER_S = 60.0
#: How often ``up`` looks at its servers.
_SUPERVISE_INTERVAL_S = 0.25


@dataclass
class _Child:
    """One supervised server process."""

    label: str
    module: str
    ready_url: str
    env: dict[str, str]
    #: How the readiness checks verify an HTTPS server (the CLI's own trust: AIAAS_TLS_CA_FILE).
    verify: ssl.SSLContext
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    #: When it exited, over the last minute (for the message).
    exits: list[float] = field(default_factory=list)
    #: When its restart is due; None while it runs.
    restart_at: float | None = None
    #: The wait before its next restart.
    backoff_s: float = _RESTART_BACKOFF_FIRST_S
    #: Restarted and not yet seen answering on ``ready_url``.
    recovering: bool = False

    def start(self) -> None:
        # A session of its own: Ctrl-C reaches only ``up``, which then stops each server
        # once, in order (a second SIGINT would make uvicorn abandon its graceful drain).
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),  # no orphan keeps holding its port
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def interrupt(self) -> None:
        """Ask it to stop (Ctrl-C): it drains and exits; see :meth:`wait_or_kill`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait_or_kill(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


#: Seconds the servers get to drain after Ctrl-C before they are killed.
_STOP_TIMEOUT_S = 15


def up(
    ctx: typer.Context,
    port: PortOption = None,
    inference_port: InferencePortOption = None,
    host: HostOption = None,
    home: HomeOption = None,
    demo: Annotated[
        bool, typer.Option(help="Train, register and deploy an iris classifier, then call it over V2 and V1.")
    ] = False,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Authentication off (AIAAS_AUTH=off): both servers answer anyone. For local work only.",
        ),
    ] = False,
) -> None:
    """Run the platform: control plane and inference server, until Ctrl-C.

    The database is migrated once, then both servers start as separate processes (a slow
    API call never slows inference). A server that exits is restarted, after a delay that
    grows while it keeps exiting (up to 30 s); the other one keeps serving meanwhile.

    Authentication is on: the first start makes a platform admin key, prints it once and
    writes it to ``<home>/admin.key`` (mode 0600), where the CLI and SDK find it. ``--dev``
    turns it off, and every start then says so.
    """
    from aiaas.config import load_settings
    from aiaas.platform import open_database
    from aiaas.store import keyring_from_settings
    from aiaas.tls import client_context, server_tls

    settings = load_settings(
        port=port, inference_port=inference_port, host=host, home=home, auth=False if dev else None
    )
    keyring_from_settings(settings)  # a bad encryption key is named now, not by two failing servers
    for label, variable, value in (
        ("--port", "PORT", settings.port),
        ("--inference-port", "INFERENCE_PORT", settings.inference_port),
    ):
        if value and not _port_free(settings.host, value):
            raise typer.BadParameter(
                f"{settings.host}:{value} is already in use (another aiaas up?); pick another port: "
                f"aiaas up {label} N, or under make: make run {variable}=N",
                param_hint=label,
            )
    # Checked here, once: a bad certificate is one message, not two servers in a restart loop.
    server_tls(settings)
    # `aiaas --ca-file F up` as well as AIAAS_TLS_CA_FILE (the option's variable).
    connection = ctx.find_root().obj
    verify = client_context(getattr(connection, "ca_file", None) or settings.tls_ca_file)
    settings.home.mkdir(parents=True, exist_ok=True)
    with console.status(f"migrating the metadata database in {settings.home}..."):
        open_database(settings).dispose()

    env = dict(os.environ)
    env.update(
        AIAAS_HOME=str(settings.home),
        AIAAS_HOST=settings.host,
        AIAAS_PORT=str(settings.port),
        AIAAS_INFERENCE_PORT=str(settings.inference_port),
        AIAAS_AUTH="on" if settings.auth else "off",
    )
    if not settings.auth:
        err.print(
            "[bold red]AUTHENTICATION IS OFF (--dev / AIAAS_AUTH=off): both servers answer anyone who "
            f"can reach {settings.host}, with full rights.[/bold red]"
        )
    api_url, inference_url = settings.resolved_control_plane_url(), settings.resolved_inference_url()
    children = [
        _Child("control plane", "aiaas.api", f"{api_url}/api/v1/health", env, verify),
        _Child("inference server", "aiaas.serving", f"{inference_url}/v2/health/ready", env, verify),
    ]
    # SIGINT too, explicitly: a process started in the background by a non-interactive shell
    # inherits SIGINT ignored, and Python then leaves it ignored, so Ctrl-C (or a supervisor's
    # SIGINT) would never reach this loop.
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        with console.status("starting the control plane and the inference server..."):
            for child in children:
                _wait_ready(child)
        if demo:
            from aiaas.cli.demo import run_demo
            from aiaas.sdk import Client
            from aiaas.sdk.keys import local_api_key

            key = settings.api_key or local_api_key(settings.admin_key_path())
            with Client(api_url, key, inference_url=inference_url, verify=verify) as client:
                run_demo(client, console)
        console.print(
            Panel.fit(
                f"control plane   {api_url}  (API docs: {api_url}/docs)\n"
                f"inference       {inference_url}/v2/models/NAME/infer  (V2)\n"
                f"                {inference_url}/v1/models/NAME:predict  (V1)\n"
                f"home            {settings.home}\n"
                + (
                    f"auth            on: the admin key is in {settings.admin_key_path()}\n\n"
                    if settings.auth
                    else "auth            OFF (--dev): anyone may call both servers\n\n"
                )
                + "Press Ctrl-C to stop.",
                title="aiaas is up",
            )
        )
        _supervise(children)
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # Both at once: each drains on its own, so stopping takes the longest drain, not the sum.
        for child in children:
            child.interrupt()
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for child in children:
            child.wait_or_kill(deadline)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wait_ready(child: _Child) -> None:
    import httpx

    from aiaas.tls import verification_failure

    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        code = child.exited()
        if code is not None:
            raise typer.Exit(_fail(f"the {child.label} exited with status {code} while starting (see above)"))
        try:
            if httpx.get(child.ready_url, timeout=2, verify=child.verify).status_code == 200:
                return
        except httpx.HTTPError as exc:
            unverified = verification_failure(exc)
            if unverified is not None:  # it answers, and no client of it will get further
                raise typer.Exit(
                    _fail(
                        f"the {child.label} answers at {child.ready_url}, but its TLS certificate cannot "
                        f"be verified: {unverified.verify_message or unverified.reason}. Give the CA that "
                        "signed AIAAS_TLS_CERT_FILE (the certificate itself if it is self-signed) in "
                        "AIAAS_TLS_CA_FILE, and check that the certificate names the host clients use "
                        f"({urlsplit(child.ready_url).hostname}; set AIAAS_CONTROL_PLANE_URL and "
                        "AIAAS_INFERENCE_URL to the name it has)"
                    )
                ) from None
        time.sleep(0.1)
    raise typer.Exit(
        _fail(f"the {child.label} was not ready after {_READY_TIMEOUT_S:.0f}s ({child.ready_url})")
    )


def _supervise(children: list[_Child]) -> None:
    """Restart a server that exited, with a growing delay while it keeps exiting; never give up.

    Each server is watched on its own: while one waits for its restart, the other keeps
    serving (an inference server has no need of the control plane to answer predictions).
    """
    while True:
        time.sleep(_SUPERVISE_INTERVAL_S)
        for child in children:
            _supervise_once(child, [c for c in children if c is not child], time.monotonic())


def _supervise_once(child: _Child, others: list[_Child], now: float) -> None:
    """One look at ``child``: notice an exit, restart when due, report when it is back."""
    if child.restart_at is not None:
        if now >= child.restart_at:
            child.start()
            child.recovering = True
        return
    code = child.exited()
    if code is None:
        if child.recovering and _answers(child.ready_url, child.verify):
            child.recovering = False
            err.print(f"[green]the {child.label} is back[/] ({child.ready_url} answers)")
        return
    if now - child.started_at >= _STABLE_AFTER_S:
        child.backoff_s = _RESTART_BACKOFF_FIRST_S
    child.exits = [t for t in child.exits if now - t < 60] + [now]
    delay = child.backoff_s
    child.restart_at = now + delay
    child.backoff_s = min(_RESTART_BACKOFF_MAX_S, delay * 2)
    still = [c.label for c in others if c.exited() is None]
    err.print(
        f"[yellow]the {child.label} {_exit_reason(code)}[/] ({len(child.exits)} "
        f"exit{'s' if len(child.exits) > 1 else ''} in the last minute); restarting it in {delay:g} s"
        + "".join(f"; the {label} keeps running" for label in still),
        highlight=False,
    )


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _answers(url: str, verify: ssl.SSLContext) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1.0, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def _fail(message: str) -> int:
    err.print(f"[red]error:[/] {message}")
    return 1


def api(port: PortOption = None, host: HostOption = None, home: HomeOption = None) -> None:
    """Run only the control plane (REST API and docs), in the foreground."""
    from aiaas.api.server import run
    from aiaas.config import load_settings

    run(load_settings(port=port, host=host, home=home))


def serve(
    inference_port: InferencePortOption = None, host: HostOption = None, home: HomeOption = None
) -> None:
    """Run only the inference server (V2 and V1 protocols), in the foreground."""
    from aiaas.config import load_settings

    settings = load_settings(inference_port=inference_port, host=host, home=home)  # checked here
    env = dict(os.environ)
    env.update(
        AIAAS_HOME=str(settings.home),
        AIAAS_HOST=settings.host,
        AIAAS_INFERENCE_PORT=str(settings.inference_port),
    )
    # The data plane is a program of its own (as under `aiaas up`): this process becomes it, so
    # it gets the terminal's signals, and the CLI never imports the inference server.
    os.execve(sys.executable, [sys.executable, "-m", "aiaas.serving"], env)


@db_app.command("upgrade")
def db_upgrade(home: HomeOption = None) -> None:
    """Apply pending migrations (the servers also do this when they start)."""
    from aiaas.config import load_settings
    from aiaas.platform import open_database

    settings = load_settings(home=home)
    db = open_database(settings)
    try:
        revision = db.current_revision()
    finally:
        db.dispose()
    console.print(f"database {_redact(settings.resolved_database_url())} is at revision {revision}")


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        user = rest.split("@", 1)[0].split(":", 1)[0]
        rest = f"{user}:***@{rest.split('@', 1)[1]}"
    return f"{scheme}{sep}{rest}"
