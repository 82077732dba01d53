"""What the inference server process imports: only what serving needs, so it starts fast
and stays small (the cold start and idle RSS targets of benchmarks/serving.py)."""

from __future__ import annotations

import subprocess
import sys

#: Packages the server must not load: migrations tooling (loaded only when the schema is
#: behind), model conversion and training stacks, and protocols it does not speak.
NOT_IMPORTED = ("alembic", "onnx", "torch", "sklearn", "skl2onnx", "websockets")


def test_the_inference_server_does_not_import_conversion_training_or_migration_packages() -> None:
    code = (
        "import sys\n"
        "import aiaas.serving.__main__, aiaas.serving.server, aiaas.serving.app\n"
        f"print(sorted(m for m in {NOT_IMPORTED!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
