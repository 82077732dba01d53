"""Hand-rolled baseline: FastAPI + ONNX Runtime, no validation, no batching.

This is the peer harness's ``fastapi_ort`` service, kept as it was measured there: it is
the floor any serving platform is compared against (the least a server can do per request
over HTTP and JSON), so it stays deliberately minimal and untyped-payload.

Env: ``BENCH_ONNX=/path/to/model.onnx``
Run: ``uvicorn baseline_fastapi_ort:app --port 8000 --workers 1 --no-access-log``
``POST /predict {"inputs": [[...], ...]}`` → ``{"predictions": [...]}`` (the first graph
output: the label for ``tabular``, the logits for ``mlp``).
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request, Response

sess = ort.InferenceSession(os.environ["BENCH_ONNX"], providers=["CPUExecutionProvider"])
in_name = sess.get_inputs()[0].name
app = FastAPI()


@app.post("/predict")
async def predict(req: Request) -> Response:
    """Decode, run on the event loop and encode, with nothing else in between."""
    x = np.asarray(json.loads(await req.body())["inputs"], dtype=np.float32)
    y = sess.run(None, {in_name: x})[0]
    return Response(json.dumps({"predictions": y.tolist()}), media_type="application/json")
