"""Start real aiaas processes for tests and wait until they answer, never a fixed sleep."""

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
from urllib.parse import urlsplit

import httpx

__all__ = ["ServerProcess", "free_port", "spawn", "wait_until"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition, *, timeout: float = 60.0, what: str = "condition", poll: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class ServerProcess:
    """A running server subprocess, its URL and its log file."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    args: list[str] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash)."""
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGINT then wait, as Ctrl-C would; SIGKILL if it does not stop."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def spawn(
    args: list[str],
    *,
    env: dict[str, str],
    ready_url: str,
    log: Path,
    timeout: float = 90.0,
    verify: ssl.SSLContext | bool = True,
) -> ServerProcess:
    """Run ``python -m <args>`` and wait until ``ready_url`` answers 200 (``verify``: an https
    URL's trust, as in ``httpx``)."""
    handle = open(log, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    proc = subprocess.Popen(
        [sys.executable, *args], env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=os.getcwd()
    )
    handle.close()
    origin = urlsplit(ready_url)
    server = ServerProcess(proc=proc, url=f"{origin.scheme}://{origin.netloc}", log=log, args=args)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{args} exited with {proc.returncode}:\n{server.output()}")
        try:
            return httpx.get(ready_url, timeout=2, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=timeout, what=f"{ready_url} to answer 200")
    except AssertionError:
        server.kill()
        raise
    return server
