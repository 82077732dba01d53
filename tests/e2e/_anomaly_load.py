"""What the anomaly rule's end-to-end test and its soak benchmark (``benchmarks/anomaly_soak.py``)
both put a deployment through: a fast and a slow ONNX version of one model, steady traffic, and
pulses of CPU contention. One definition, so the benchmark's minutes of steady traffic are the
test's minute, longer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests._auth import AUTH

__all__ = ["FAST_EVALUATION", "RULE", "SLOW", "WIDTH", "Contention", "Traffic", "matmuls"]

WIDTH = 512
#: Matrix products of the slow version: about 150 ms a request on one idle core.
SLOW = 3000
#: The servers' settings: metrics sampled every 0.2 s into 1 s rows, rules evaluated every 0.2 s.
FAST_EVALUATION = {
    "AIAAS_METRICS_INTERVAL_S": "1",
    "AIAAS_METRICS_FLUSH_INTERVAL_S": "0.2",
    "AIAAS_ALERTS_EVALUATION_INTERVAL_S": "0.2",
    "AIAAS_ALERTS_LEASE_S": "10",
}
#: The anomaly rule, no threshold anywhere: 2 s windows judged against the 60 s before them,
#: from 15 windows on. ``for`` 4 s: a shared test machine stalls now and then for a second or two.
RULE: dict[str, Any] = {"window": "2s", "training_window": "60s", "min_history": 15, "for_": "4s"}


def matmuls(count: int) -> bytes:
    """``count`` products with one WIDTHxWIDTH matrix: 1 is fast, a few hundred take tens of ms."""
    rng = np.random.default_rng(0)
    w = (rng.normal(size=(WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    nodes, prev = [], "X"
    for i in range(count):
        nodes.append(helper.make_node("MatMul", [prev, "W"], [f"H{i}"]))
        prev = f"H{i}"
    nodes.append(helper.make_node("Identity", [prev], ["Y"]))
    graph = helper.make_graph(
        nodes,
        "matmuls",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", WIDTH])],
        [numpy_helper.from_array(w, "W")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


class Traffic:
    """One request at a time to ``deployment`` from a thread, a few milliseconds apart, until
    stopped; ``sent`` and ``failed`` count the requests and those not answered 200."""

    def __init__(self, inference_url: str, deployment: str) -> None:
        self._stop = threading.Event()
        self.sent = 0
        self.failed = 0
        body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, WIDTH], "data": [0.5] * WIDTH}]}

        def run() -> None:
            with httpx.Client(base_url=inference_url, timeout=30, headers=AUTH) as http:
                while not self._stop.is_set():
                    self.sent += 1
                    if http.post(f"/v2/models/{deployment}/infer", json=body).status_code != 200:
                        self.failed += 1
                    self._stop.wait(0.01)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Contention:
    """One busy process per core, run for ``on_s`` then stopped for ``off_s``, until closed:
    the load a neighbouring process puts on a shared machine, in pulses longer than the rule's
    2 s windows, so the history holds wholly contended windows as well as quiet ones."""

    def __init__(self, on_s: float = 4.0, off_s: float = 4.0) -> None:
        self._stop = threading.Event()
        self._busy = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)
        ]

        def run() -> None:
            while True:
                for p in self._busy:
                    p.send_signal(signal.SIGCONT)
                if self._stop.wait(on_s):
                    return
                for p in self._busy:
                    p.send_signal(signal.SIGSTOP)
                if self._stop.wait(off_s):
                    return

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for p in self._busy:
            p.kill()
            p.wait()
