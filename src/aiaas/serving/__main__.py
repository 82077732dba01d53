"""``python -m aiaas.serving``: run the inference server on its own."""

from __future__ import annotations

import argparse
import sys

from aiaas.config import load_settings
from aiaas.errors import AiaasError, InvalidArgument
from aiaas.serving.server import run

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the server until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m aiaas.serving",
        description="Run the aiaas inference server: KServe V2 (Open Inference Protocol) and "
        "KServe V1 over HTTP, serving the deployments recorded in the metadata DB. Settings "
        "come from AIAAS_* environment variables (AIAAS_HOME, AIAAS_DATABASE_URL, "
        "AIAAS_ARTIFACT_ROOT, AIAAS_MAX_REQUEST_BYTES, ...); these flags override them.",
    )
    parser.add_argument("--host", help="interface to bind (AIAAS_HOST; default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help="port to listen on (AIAAS_INFERENCE_PORT; default 8080; 0 = any free port)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(host=args.host, inference_port=args.port)
    except InvalidArgument as exc:
        parser.error(exc.message)
    try:
        run(settings)
    except AiaasError as exc:
        print(f"aiaas inference server: error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
