"""``python -m aiaas.api``: run the control plane alone (``aiaas up`` runs both servers)."""

from __future__ import annotations

import argparse

from aiaas.api.server import run
from aiaas.config import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m aiaas.api", description="Run the aiaas control plane.")
    parser.add_argument("--host", help="interface to bind (AIAAS_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (AIAAS_PORT, default 8000)")
    args = parser.parse_args()
    run(load_settings(host=args.host, port=args.port))


if __name__ == "__main__":
    main()
