"""Serving throughput with authentication on against off: the same server, interleaved runs.

Issue 11 asks that authentication on the inference server cost at most 5% of its throughput
(on ÷ off ≥ 0.95). This script:

1. builds the ``tabular`` reference model (``reference_models.py``) and registers and deploys
   it in a fresh home, with an admin key written to ``<home>/admin.key`` (registered by the
   server at its start, as an operator's chosen key is);
2. runs ``python -m aiaas.serving`` with ``AIAAS_AUTH=off`` then ``=on``, and again,
   ``--rounds`` times, a fresh process each time, with the load generator of ``serving.py``
   (single-row V2 requests, closed loop), which sends the key in both: the requests are the
   same bytes, and only whether the server checks the key differs;
3. checks that a request without the key is refused (401) in each "on" run, so the key
   check really ran;
4. writes a markdown report and its JSON to ``benchmarks/results/`` (the loop, the load and
   CPU readings and the report are ``ab.py``'s, shared with the other A/B scripts).

Examples:
    .venv/bin/python benchmarks/auth_serving_ab.py                   # 3 rounds, -d 8 -w 2, c=32
    .venv/bin/python benchmarks/auth_serving_ab.py --quick           # 2 rounds of 3 s
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import ab
import reference_models

import serving


def refused_without_key(url: str, body: bytes) -> bool:
    """Whether the server answers 401 to the benchmark request sent without a key."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401


def main(argv: Sequence[str] | None = None) -> int:
    from aiaas.security import generate_key, write_key_file

    args = ab.parse(ab.parser(__doc__ or "", "auth"), "auth", argv)
    key = generate_key().key
    # The same requests either way, the key included (read by serving.post, the start probe,
    # load.py and ab.counter): what differs is only whether the server checks it.
    os.environ["BENCH_AUTHORIZATION"] = f"Bearer {key}"

    def prepare(home: Path, model: reference_models.ReferenceModel) -> None:
        serving.prepare_aiaas_home(home, model)
        write_key_file(home / "admin.key", key)

    def arms(home: Path, model: reference_models.ReferenceModel) -> list[ab.Arm]:
        spec = serving.aiaas_spec(model, home)

        def checked(port: int) -> dict[str, bool]:
            return {"refused_without_key": refused_without_key(spec.url(port), spec.body)}

        return [ab.Arm("off", {"AIAAS_AUTH": "off"}), ab.Arm("on", {"AIAAS_AUTH": "on"}, after_start=checked)]

    try:
        runs = ab.run(args, prepare, arms)
    finally:
        os.environ.pop("BENCH_AUTHORIZATION", None)
    ab.report(
        args,
        runs,
        title="authentication",
        command="benchmarks/auth_serving_ab.py",
        setting="auth",
        columns=[
            ab.Column("401 without key", "refused_without_key", lambda v: "" if v is None else str(v).lower())
        ],
        notes=[
            "the `tabular` reference model in one aiaas inference server, single-row V2 requests, off "
            "and on interleaved, a fresh server process per run; every request carries the key in both "
            "(the same bytes: only the server's check differs), and with auth on a request without it "
            "was checked to be refused (401)."
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
