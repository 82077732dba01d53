"""The language model runtime in-process: continuous batching against a plain greedy decode.

The runtime is driven the way a replica drives it (GENERATE/CANCEL frames in, CHUNK/FINISH
frames out, one ``step`` at a time), so requests can be made to join a running batch at
chosen steps.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from aiaas.serving import ipc
from aiaas.serving.runtimes import create
from tests._hf_models import greedy, make_causal_lm

PROMPTS = [
    "hello",
    "the quick brown fox jumps over",
    "a",
    "embeddings turn sentences into vectors of numbers",
]


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_causal_lm(tmp_path_factory.mktemp("lm") / "model")


@pytest.fixture(scope="module")
def runtime(lm: Path) -> Any:
    return create({"runtime": "hf-causal-lm", "path": str(lm), "device": "cpu", "max_batch_size": 4})


class Driver:
    """Feeds frames to a runtime and collects what each request got back."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.text: dict[int, str] = {}
        self.finish: dict[int, dict[str, Any]] = {}
        self.errors: dict[int, dict[str, Any]] = {}

    def send(self, kind: int, request_id: int, body: dict[str, Any] | None = None) -> None:
        self._take(self.runtime.handle(kind, request_id, memoryview(orjson.dumps(body or {}))))

    def step(self) -> None:
        self._take(self.runtime.step())

    def run(self) -> None:
        while self.runtime.busy():
            self.step()

    def _take(self, frames: list[bytes]) -> None:
        parsed, _ = ipc.split_frames(bytearray(b"".join(frames)))
        for kind, request_id, body in parsed:
            if kind == ipc.ERROR:
                self.errors[request_id] = orjson.loads(ipc.decode_error(body)[1])
                continue
            data = orjson.loads(bytes(body))
            self.text[request_id] = self.text.get(request_id, "") + data["text"]
            if kind == ipc.FINISH:
                self.finish[request_id] = data


def reference(lm: Path, runtime: Any, prompt: str, max_tokens: int) -> str:
    ids = greedy(lm, prompt, max_tokens)
    text: str = runtime.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return text


def test_one_greedy_request_equals_a_plain_greedy_decode(lm: Path, runtime: Any) -> None:
    driver = Driver(runtime)
    driver.send(ipc.GENERATE, 1, {"prompt": PROMPTS[1], "max_tokens": 20, "temperature": 0})
    driver.run()
    assert driver.text[1] == reference(lm, runtime, PROMPTS[1], 20)
    usage = driver.finish[1]["usage"]
    assert usage["prompt_tokens"] == len(runtime.tokenizer.encode(PROMPTS[1]))
    assert usage["completion_tokens"] == 20 and driver.finish[1]["finish_reason"] == "length"


def test_requests_joining_a_running_batch_each_equal_their_own_greedy_decode(lm: Path, runtime: Any) -> None:
    driver = Driver(runtime)
    lengths = [24, 10, 30, 16]
    # Staggered arrivals: each request joins the batch some steps after the previous one,
    # prompts of different lengths, so the shared cache is left-padded and trimmed.
    for i, (prompt, n) in enumerate(zip(PROMPTS, lengths, strict=True)):
        driver.send(ipc.GENERATE, i + 1, {"prompt": prompt, "max_tokens": n, "temperature": 0})
        for _ in range(3 + i):
            driver.step()
        assert len(runtime.engine.running) >= 1
    assert max(len(runtime.engine.running), 1) <= 4
    driver.run()
    for i, (prompt, n) in enumerate(zip(PROMPTS, lengths, strict=True)):
        assert driver.text[i + 1] == reference(lm, runtime, prompt, n), prompt
        # The plain decode's token count: n, or fewer when it met the end-of-text token.
        assert driver.finish[i + 1]["usage"]["completion_tokens"] == len(greedy(lm, prompt, n))


def test_batch_full_requests_wait_then_run(lm: Path, runtime: Any) -> None:
    driver = Driver(runtime)
    for i in range(6):  # max_batch_size is 4
        driver.send(ipc.GENERATE, i + 1, {"prompt": PROMPTS[i % 4], "max_tokens": 5 + i, "temperature": 0})
    driver.step()
    assert len(runtime.engine.running) == 4 and len(runtime.engine.waiting) == 2
    driver.run()
    assert sorted(driver.finish) == [1, 2, 3, 4, 5, 6]
    assert driver.text[5] == reference(lm, runtime, PROMPTS[0], 9)


def test_cancel_frees_the_slot_at_once(runtime: Any) -> None:
    driver = Driver(runtime)
    driver.send(ipc.GENERATE, 1, {"prompt": "hello", "max_tokens": 100, "temperature": 0})
    driver.send(ipc.GENERATE, 2, {"prompt": "a", "max_tokens": 100, "temperature": 0})
    driver.step()
    driver.step()
    driver.send(ipc.CANCEL, 1)
    assert driver.finish[1]["finish_reason"] == "cancelled"
    assert [s.request_id for s in runtime.engine.running] == [2]
    driver.send(ipc.CANCEL, 2)
    assert not runtime.busy()


def test_seeded_sampling_repeats_and_different_seeds_differ(runtime: Any) -> None:
    def sample(seed: int, companions: int) -> str:
        driver = Driver(runtime)
        for c in range(companions):
            driver.send(ipc.GENERATE, 100 + c, {"prompt": PROMPTS[c], "max_tokens": 12, "temperature": 0.7})
        driver.send(ipc.GENERATE, 1, {"prompt": "hello", "max_tokens": 12, "temperature": 1.5, "seed": seed})
        driver.run()
        return driver.text[1]

    assert sample(7, 0) == sample(7, 0)
    assert sample(7, 0) != sample(8, 0) or sample(7, 0) != sample(9, 0)


def test_stop_string_ends_the_text_before_it(runtime: Any) -> None:
    driver = Driver(runtime)
    driver.send(ipc.GENERATE, 1, {"prompt": PROMPTS[1], "max_tokens": 30, "temperature": 0})
    driver.run()
    full = driver.text[1]
    stop = full[8:11]
    driver.send(ipc.GENERATE, 2, {"prompt": PROMPTS[1], "max_tokens": 30, "temperature": 0, "stop": [stop]})
    driver.run()
    assert driver.text[2] == full[: full.index(stop)]
    assert driver.finish[2]["finish_reason"] == "stop"


def test_limits_are_refused_naming_the_field(runtime: Any) -> None:
    driver = Driver(runtime)
    driver.send(ipc.GENERATE, 1, {"prompt": "hello " * 200, "max_tokens": 5})
    assert driver.errors[1]["param"] == "prompt"
    assert "maximum context length is 128" in driver.errors[1]["message"]
    driver.send(ipc.GENERATE, 2, {"prompt": "hello", "max_tokens": 500})
    assert driver.errors[2]["param"] == "max_tokens"
    driver.send(ipc.GENERATE, 3, {"prompt": [1, 2, 10**6], "max_tokens": 5})
    assert driver.errors[3]["param"] == "prompt"
    assert not runtime.busy()


def test_chat_messages_use_the_chat_template(lm: Path, runtime: Any) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    driver = Driver(runtime)
    driver.send(ipc.GENERATE, 1, {"messages": messages, "max_tokens": 8, "temperature": 0})
    driver.run()
    prompt = "<|system|>\nbe brief\n<|user|>\nhello\n<|assistant|>\n"
    assert driver.text[1] == reference(lm, runtime, prompt, 8)


def test_requests_arriving_together_share_one_prefill_and_each_equal_their_greedy_decode(
    lm: Path, runtime: Any
) -> None:
    driver = Driver(runtime)
    driver.send(ipc.GENERATE, 9, {"prompt": "a", "max_tokens": 1, "temperature": 0})
    driver.run()  # the engine knows now that its caches merge
    prefills = runtime.engine.prefills
    # Prompts of different lengths: one left-padded prefill for all four.
    for i, prompt in enumerate(PROMPTS):
        driver.send(ipc.GENERATE, i + 1, {"prompt": prompt, "max_tokens": 12, "temperature": 0})
    driver.step()
    assert runtime.engine.prefills == prefills + 1
    assert len(runtime.engine.running) == 4
    driver.run()
    for i, prompt in enumerate(PROMPTS):
        assert driver.text[i + 1] == reference(lm, runtime, prompt, 12), prompt


def test_a_long_schedule_of_joins_leaves_and_cancels_each_equals_its_greedy_decode(
    lm: Path, runtime: Any
) -> None:
    # A fixed pseudo-random schedule: prompts of 1 to ~40 tokens (a long one joining a batch
    # whose cache is narrower than it), lengths up to near the 128-token context (the
    # batch's cache outgrows its first buffers and moves), rows leaving from the middle of
    # the batch, and cancellations, with at most 4 sequences decoded together.
    rng = random.Random(3)
    words = " ".join(PROMPTS).split()
    requests: dict[int, tuple[str, int]] = {}
    for rid in range(1, 15):
        prompt = " ".join(rng.choice(words) for _ in range(rng.choice([1, 2, 5, 12, 25])))
        room = 128 - len(runtime.tokenizer.encode(prompt))
        requests[rid] = (prompt, rng.randint(1, min(room, 100)))
    # Two long requests' clients go away 10 steps after sending them.
    cancelled = [rid for rid, (_, n) in requests.items() if n > 20][:2]
    sent: dict[int, int] = {}
    driver = Driver(runtime)
    pending = sorted(requests)
    for step in range(2000):
        if pending and rng.random() < 0.3:
            rid = pending.pop(0)
            prompt, n = requests[rid]
            driver.send(ipc.GENERATE, rid, {"prompt": prompt, "max_tokens": n, "temperature": 0})
            sent[rid] = step
        for rid in cancelled:
            if sent.get(rid) == step - 10:
                driver.send(ipc.CANCEL, rid)
        if not pending and not runtime.busy():
            break
        driver.step()
    assert sorted(driver.finish) == sorted(requests)
    for rid, (prompt, n) in requests.items():
        expected = reference(lm, runtime, prompt, n)
        if rid in cancelled:
            assert driver.finish[rid]["finish_reason"] == "cancelled"
            assert expected.startswith(driver.text[rid]), rid
        else:
            assert driver.text[rid] == expected, rid
