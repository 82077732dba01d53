"""``python -m aiaas.api``: run the control plane alone (``aiaas up`` runs both servers)."""

from __future__ import annotations

import argparse
import sys

from aiaas.api.server import run
from aiaas.config import load_settings
from aiaas.errors import AiaasError, InvalidArgument
from aiaas.store import keyring_from_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m aiaas.api", description="Run the aiaas control plane.")
    parser.add_argument("--host", help="interface to bind (AIAAS_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (AIAAS_PORT, default 8000)")
    args = parser.parse_args()
    try:
        settings = load_settings(host=args.host, port=args.port)
        keyring_from_settings(settings)  # a bad encryption key is named here, before the server starts
    except InvalidArgument as exc:
        parser.error(exc.message)
    try:
        run(settings)
    except AiaasError as exc:
        print(f"aiaas control plane: error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
