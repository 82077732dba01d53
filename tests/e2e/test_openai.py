"""The OpenAI-compatible API, end to end: the official ``openai`` client against real servers.

One control plane and one inference server for the module (SQLite); tiny models built
here are registered as folders and deployed like any model. Every generated text is
compared with a plain PyTorch greedy decode of the same weights, and every embedding with
sentence-transformers' own ``encode``.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from aiaas.sdk import Client
from tests._auth import ADMIN_KEY, AUTH
from tests._hf_models import encode, greedy, make_causal_lm, make_embedder
from tests._servers import ServerProcess, free_port, wait_until
from tests.conftest import server_environment
from tests.e2e.conftest import start_api, start_inference


@dataclass
class LLMPlatform:
    api: ServerProcess
    inference: ServerProcess
    client: Client
    lm: Path
    lm2: Path
    embedder: Path

    @property
    def base_url(self) -> str:
        return f"{self.inference.url}/openai/v1"

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=ADMIN_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMPlatform]:
    home = tmp_path_factory.mktemp("llm")
    models = tmp_path_factory.mktemp("models")
    env = server_environment(home, f"sqlite:///{home / 'aiaas.db'}")
    env["AIAAS_TORCH_THREADS"] = "1"
    api = start_api(env, home, free_port())
    inference = start_inference(env, home, free_port())
    client = Client(api.url, inference_url=inference.url)
    platform = LLMPlatform(
        api,
        inference,
        client,
        lm=make_causal_lm(models / "lm"),
        lm2=make_causal_lm(models / "lm2", seed=1),
        embedder=make_embedder(models / "embedder"),
    )
    try:
        client.register_model("tiny-gpt", str(platform.lm))
        client.register_model("tiny-gpt", str(platform.lm2))
        client.set_alias("tiny-gpt", "production", 1)
        client.register_model("mini-embed", str(platform.embedder))
        client.deploy("chat", model="tiny-gpt", alias="production")
        client.deploy("solo", model="tiny-gpt", version=1, batching={"max_batch_size": 1})
        client.deploy("embed", model="mini-embed", version=1)
        for name in ("chat", "solo", "embed"):
            client.wait_until_served(name)
        yield platform
    finally:
        client.close()
        inference.stop()
        api.stop()


@functools.cache
def _tokenizer(lm: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(lm)


def reference(lm: Path, prompt: str, max_tokens: int) -> str:

    tokenizer = _tokenizer(lm)
    text: str = tokenizer.decode(
        greedy(lm, prompt, max_tokens), skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    return text


def test_inference_server_does_not_import_torch() -> None:
    code = (
        "import sys, aiaas.serving.app; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


def test_models_list_shows_language_and_embedding_deployments(llm: LLMPlatform) -> None:
    models = {m.id: m for m in llm.openai().models.list()}
    assert {"chat", "solo", "embed"} <= set(models)
    assert models["chat"].model_dump()["max_model_len"] == 128
    assert llm.openai().models.retrieve("embed").id == "embed"
    with pytest.raises(openai.NotFoundError):
        llm.openai().models.retrieve("nope")


def test_embeddings_equal_sentence_transformers_encode(llm: LLMPlatform) -> None:
    texts = ["hello world", "the quick brown fox jumps over the lazy dog", "a"]
    expected = encode(llm.embedder, texts)
    client = llm.openai()
    # Without encoding_format the client asks for base64 and decodes it itself.
    for extra in ({}, {"encoding_format": "float"}):
        result = client.embeddings.create(model="embed", input=texts, **extra)  # type: ignore[arg-type]
        got = np.array([d.embedding for d in result.data], dtype=np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-5)
    single = client.embeddings.create(model="embed", input="hello world")
    np.testing.assert_allclose(single.data[0].embedding, expected[0], atol=1e-5)
    assert result.usage.prompt_tokens > len(texts)
    # On a CPU the vectors came from ONNX Runtime's run of the exported model (PyTorch on a GPU).
    import torch

    engine = "pytorch" if torch.cuda.is_available() else "onnxruntime"
    assert client.models.retrieve("embed").model_dump()["aiaas"]["engine"] == engine


def test_embeddings_from_many_clients_at_once_each_get_their_own_vectors(llm: LLMPlatform) -> None:
    texts = [f"sentence number {i} about the platform" for i in range(24)]
    expected = encode(llm.embedder, texts)

    async def main() -> list[list[float]]:
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key=ADMIN_KEY, max_retries=0)
        results = await asyncio.gather(*(client.embeddings.create(model="embed", input=t) for t in texts))
        await client.close()
        return [r.data[0].embedding for r in results]

    np.testing.assert_allclose(np.array(asyncio.run(main())), expected, atol=1e-5)


def test_completion_equals_a_plain_greedy_decode(llm: LLMPlatform) -> None:
    prompt = "the quick brown fox"
    result = llm.openai().completions.create(model="chat", prompt=prompt, max_tokens=20, temperature=0)
    assert result.choices[0].text == reference(llm.lm, prompt, 20)
    assert result.usage is not None and result.usage.completion_tokens == len(greedy(llm.lm, prompt, 20))


def test_streamed_text_equals_non_streamed_text_with_a_seed(llm: LLMPlatform) -> None:
    client = llm.openai()
    messages = [{"role": "user", "content": "hello there"}]
    whole = client.chat.completions.create(
        model="chat",
        messages=messages,
        max_tokens=24,
        temperature=0.9,
        top_p=0.95,
        seed=42,  # type: ignore[arg-type]
    )
    stream = client.chat.completions.create(
        model="chat", messages=messages, max_tokens=24, temperature=0.9, top_p=0.95, seed=42,  # type: ignore[arg-type]
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None and chunks[-1].usage == whole.usage
    plain = client.completions.create(model="chat", prompt="hello", max_tokens=12, seed=3, stream=True)
    again = client.completions.create(model="chat", prompt="hello", max_tokens=12, seed=3)
    assert "".join(c.choices[0].text for c in plain) == again.choices[0].text


def test_concurrent_streams_share_the_batch_and_each_equal_its_greedy_decode(llm: LLMPlatform) -> None:
    prompts = [
        "hello",
        "the quick brown fox",
        "a model is served",
        "continuous batching lets",
        "embeddings",
        "ü",
    ]

    async def one(client: openai.AsyncOpenAI, prompt: str, delay: float) -> str:
        await asyncio.sleep(delay)  # staggered arrivals, so requests join a running batch
        stream = await client.completions.create(
            model="chat", prompt=prompt, max_tokens=30, temperature=0, stream=True
        )
        return "".join([c.choices[0].text async for c in stream])

    async def main() -> list[str]:
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key=ADMIN_KEY, max_retries=0)
        texts = await asyncio.gather(*(one(client, p, 0.01 * i) for i, p in enumerate(prompts)))
        await client.close()
        return list(texts)

    assert asyncio.run(main()) == [reference(llm.lm, p, 30) for p in prompts]


def test_bad_requests_get_openai_shaped_4xx_naming_the_field(llm: LLMPlatform) -> None:
    client = llm.openai()
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="no-such-model", prompt="hi")
    assert missing.value.body["param"] == "model"  # type: ignore[index]
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    cases = [
        ({"max_tokens": 1000}, "max_tokens"),
        ({"prompt": "hello " * 300}, "prompt"),
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"logprobs": 2}, "logprobs"),
    ]
    for extra, field in cases:
        body = {"prompt": "hello", **extra}
        with pytest.raises(openai.BadRequestError) as bad:
            client.completions.create(model="chat", **body)  # type: ignore[arg-type]
        assert bad.value.status_code == 400
        assert bad.value.body["param"] == field, (extra, bad.value.body)  # type: ignore[index]
        assert bad.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as streamed:  # refused before the stream starts
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x " * 300}], stream=True
        )
    assert streamed.value.body["param"] == "messages"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as wrong_kind:
        client.embeddings.create(model="chat", input="hello")
    assert wrong_kind.value.body["param"] == "model"  # type: ignore[index]
    raw = httpx.post(f"{llm.base_url}/chat/completions", content=b"{not json", timeout=10, headers=AUTH)
    assert raw.status_code == 400 and raw.json()["error"]["param"] == "body"


def test_client_that_disconnects_mid_stream_frees_its_slot(llm: LLMPlatform) -> None:
    # "solo" runs one sequence at a time: a slot left held would block the next request.
    def solo() -> dict[str, object]:
        card = httpx.get(f"{llm.base_url}/models/solo", timeout=10, headers=AUTH).json()
        return dict(card["aiaas"])

    before = solo()["cancelled_requests"]
    body = {"model": "solo", "prompt": "hello", "max_tokens": 120, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{llm.base_url}/completions", json=body, timeout=30, headers=AUTH) as response:
        assert response.status_code == 200
        next(response.iter_lines())  # the first piece arrived; now go away mid-stream
    wait_until(
        lambda: solo()["cancelled_requests"] == before + 1, timeout=30, what="the cancel to reach the batch"
    )
    assert int(solo()["cancelled_tokens"]) < 120  # the replica stopped it early
    result = llm.openai().completions.create(model="solo", prompt="a", max_tokens=5, temperature=0)
    assert result.choices[0].text == reference(llm.lm, "a", 5)


def test_alias_move_switches_the_language_model_and_moving_back_rolls_back(llm: LLMPlatform) -> None:
    client = llm.openai()

    def served() -> tuple[int, str]:
        raw = client.completions.with_raw_response.create(
            model="chat", prompt="hello", max_tokens=10, temperature=0
        )
        return int(raw.headers["x-aiaas-model-version"]), raw.parse().choices[0].text

    assert served() == (1, reference(llm.lm, "hello", 10))
    llm.client.set_alias("tiny-gpt", "production", 2)
    llm.client.wait_until_served("chat", 2)
    assert served() == (2, reference(llm.lm2, "hello", 10))
    llm.client.set_alias("tiny-gpt", "production", 1)  # rollback
    llm.client.wait_until_served("chat", 1)
    assert served() == (1, reference(llm.lm, "hello", 10))


def test_canary_route_sends_a_share_of_requests_to_the_new_version(llm: LLMPlatform) -> None:
    llm.client.deploy("canary", model="tiny-gpt", version=1, traffic=[{"version": 2, "weight": 50}])
    llm.client.wait_until_served("canary")
    client = llm.openai()
    versions = set()
    for _ in range(24):
        raw = client.completions.with_raw_response.create(
            model="canary", prompt="hi", max_tokens=2, temperature=0
        )
        versions.add(int(raw.headers["x-aiaas-model-version"]))
        if versions == {1, 2}:
            break
    assert versions == {1, 2}
    llm.client.delete_deployment("canary")


def test_embedding_model_answers_kserve_v2_too(llm: LLMPlatform) -> None:
    body = {"inputs": [{"name": "input", "datatype": "BYTES", "shape": [2], "data": ["hello world", "a"]}]}
    response = httpx.post(f"{llm.inference.url}/v2/models/embed/infer", json=body, timeout=30, headers=AUTH)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    assert output["name"] == "embedding" and output["shape"] == [2, 32]
    np.testing.assert_allclose(
        np.array(output["data"]).reshape(2, 32), encode(llm.embedder, ["hello world", "a"]), atol=1e-5
    )
