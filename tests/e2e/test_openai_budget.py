"""Several language models on one server within a memory budget: loaded on demand, evicted LRU.

The budget (``AIAAS_MODEL_MEMORY_BUDGET_BYTES``) is set so that one tiny language model and
the tiny embedder fit, but not two language models.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from aiaas.sdk import Client
from tests._auth import ADMIN_KEY, AUTH
from tests._hf_models import make_causal_lm, make_embedder
from tests._servers import free_port, wait_until
from tests.conftest import server_environment
from tests.e2e.conftest import start_api, start_inference

#: Fits one tiny LM (about 2.5 MB with a 32-sequence KV cache) and the embedder, not two LMs.
BUDGET = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Client]]:
    home = tmp_path_factory.mktemp("budget")
    models = tmp_path_factory.mktemp("models")
    env = server_environment(home, f"sqlite:///{home / 'aiaas.db'}")
    env.update(AIAAS_MODEL_MEMORY_BUDGET_BYTES=str(BUDGET), AIAAS_TORCH_THREADS="1")
    api = start_api(env, home, free_port())
    inference = start_inference(env, home, free_port())
    client = Client(api.url, inference_url=inference.url)
    try:
        client.register_model("lm", str(make_causal_lm(models / "a")))
        client.register_model("lm", str(make_causal_lm(models / "b", seed=1)))
        client.register_model("embedder", str(make_embedder(models / "e")))
        client.deploy("a", model="lm", version=1)
        client.deploy("b", model="lm", version=2)
        client.deploy("e", model="embedder")
        client.deploy("huge", model="lm", version=1, batching={"max_batch_size": 4096})
        for name in ("a", "b", "e", "huge"):
            client.wait_until_served(name)
        yield f"{inference.url}/openai/v1", client
    finally:
        client.close()
        inference.stop()
        api.stop()


def state(base_url: str) -> dict[str, dict[str, Any]]:
    cards = httpx.get(f"{base_url}/models", timeout=10, headers=AUTH).json()["data"]
    return {c["id"]: c["aiaas"] for c in cards}


def complete(base_url: str, model: str, **extra: Any) -> Any:
    client = openai.OpenAI(base_url=base_url, api_key=ADMIN_KEY, max_retries=0, timeout=120)
    return client.completions.create(
        **{"model": model, "prompt": "hello", "max_tokens": 8, "temperature": 0, **extra}
    )


def test_models_load_on_first_request_and_the_least_recently_used_idle_one_makes_room(
    server: tuple[str, Client],
) -> None:
    base_url, _ = server
    assert not any(s["loaded"] for s in state(base_url).values())  # nothing loads before it is asked for
    first_a = complete(base_url, "a").choices[0].text
    openai.OpenAI(base_url=base_url, api_key=ADMIN_KEY, max_retries=0).embeddings.create(
        model="e", input="hi"
    )
    now = state(base_url)
    assert now["a"]["loaded"] and now["e"]["loaded"] and not now["b"]["loaded"]
    complete(base_url, "b")  # does not fit beside a: a (idle, least recently used) is unloaded
    now = state(base_url)
    assert now["b"]["loaded"] and not now["a"]["loaded"]
    assert now["e"]["loaded"]  # the embedder was used after a, and b fits beside it
    assert complete(base_url, "a").choices[0].text == first_a  # loaded again, same answer
    now = state(base_url)
    assert now["a"]["loads"] == 2 and not now["b"]["loaded"]


def test_a_busy_model_is_not_evicted_the_newcomer_waits(server: tuple[str, Client]) -> None:
    base_url, _ = server
    complete(base_url, "a")
    long: dict[str, Any] = {}

    def generate() -> None:
        long["result"] = complete(base_url, "a", max_tokens=110, extra_body={"ignore_eos": True})

    worker = threading.Thread(target=generate)
    worker.start()
    wait_until(lambda: state(base_url)["a"]["active_requests"] == 1, timeout=60, what="a's request to start")
    try:
        short = complete(base_url, "b")  # needs a's room: waits until a's request is done
    finally:
        worker.join(timeout=120)
    assert long["result"].choices[0].finish_reason == "length"
    assert long["result"].usage.completion_tokens == 110  # a finished its work, uncut
    assert short.choices[0].finish_reason in ("length", "stop")


def test_a_model_larger_than_the_budget_is_refused_naming_the_setting(server: tuple[str, Client]) -> None:
    base_url, _ = server
    with pytest.raises(openai.InternalServerError) as refused:
        complete(base_url, "huge")
    assert refused.value.status_code == 503
    assert "AIAAS_MODEL_MEMORY_BUDGET_BYTES" in refused.value.body["message"]  # type: ignore[index]
    assert complete(base_url, "a").choices[0].text  # the server serves on


def test_a_deleted_deployment_stops_its_model(server: tuple[str, Client], tmp_path: Path) -> None:
    base_url, client = server
    client.deploy("temp", model="lm", version=2)
    client.wait_until_served("temp")
    complete(base_url, "temp")
    assert state(base_url)["temp"]["loaded"]
    client.delete_deployment("temp")
    with pytest.raises(openai.NotFoundError):
        for _ in range(200):
            complete(base_url, "temp")
    assert "temp" not in state(base_url)
