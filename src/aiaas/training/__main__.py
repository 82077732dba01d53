"""``python -m aiaas.training DIR``: run one rank of a data-parallel job folder.

Started by ``train`` for ranks 1..N-1 of a local run, or by ``torchrun`` on every machine
(see :mod:`aiaas.training.distributed`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiaas.training.distributed import run_job_folder

if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m aiaas.training DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_job_folder(Path(sys.argv[1])))
