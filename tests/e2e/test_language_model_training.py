"""A language model through the HTTP API: a .txt corpus → a transformer job → validation
perplexity falling epoch by epoch → an hf-causal-lm version (safetensors + config + tokenizer)
that transformers loads offline; a killed worker resumes and ends exactly like an
uninterrupted run; fine-tuning the registered version on new text keeps its tokenizer."""

from __future__ import annotations

import io
import os
import random
import signal
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from aiaas.errors import InvalidArgument
from aiaas.schemas import Job
from aiaas.sdk import Client
from tests._auth import AUTH
from tests._servers import free_port, wait_until
from tests.conftest import fresh_database, server_environment
from tests.e2e.conftest import start_api

ADJECTIVES = ["quick", "lazy", "red", "small", "happy", "old", "brave"]
NOUNS = ["fox", "dog", "cat", "bird", "horse", "mouse", "owl"]
VERBS = ["jumps over", "chases", "sees", "likes", "follows"]


def _corpus(documents: int, seed: int) -> str:
    """Paragraphs of three sentences of one small grammar, separated by blank lines."""
    rng = random.Random(seed)

    def sentence() -> str:
        a, b = rng.choice(ADJECTIVES), rng.choice(ADJECTIVES)
        return f"The {a} {rng.choice(NOUNS)} {rng.choice(VERBS)} the {b} {rng.choice(NOUNS)}."

    return "\n\n".join("\n".join(sentence() for _ in range(3)) for _ in range(documents)) + "\n"


SPEC = """\
dataset: stories
model:
  {family: transformer, n_layer: 2, n_head: 2, n_embd: 64, context_length: 32, vocab_size: 300, dropout: 0.1}
optimizer: {name: adamw, lr: 0.003}
schedule: {name: cosine}
epochs: EPOCHS
batch_size: 8
seed: 4
register_as: REGISTER_AS
"""


def _spec(register_as: str, epochs: int = 3) -> str:
    return SPEC.replace("REGISTER_AS", register_as).replace("EPOCHS", str(epochs))


class Platform:
    """A control plane on SQLite with the stories corpus registered."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.api = start_api(env, home, free_port())
        self.client = Client(self.api.url)
        self.dataset = self.client.create_dataset(
            "stories", _corpus(80, seed=0).encode(), filename="stories.txt"
        )

    def worker_pids(self) -> list[int]:
        try:
            children = psutil.Process(self.api.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [p.pid for p in children if "aiaas.training.worker" in " ".join(_cmdline(p))]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("lm")
    with fresh_database("sqlite", home) as url:
        p = Platform(home, server_environment(home, url))
        try:
            yield p
        finally:
            p.client.close()
            p.api.stop()


@pytest.fixture(scope="module")
def first_job(platform: Platform) -> Job:
    """The first language model of the corpus (the parent of the fine-tuning test too)."""
    job = platform.client.submit_job(_spec("stories-lm"))
    assert (job.spec["task"], job.spec.get("target"), job.epochs) == ("text-generation", None, 3)
    job = platform.client.wait_for_job(job.id, timeout=600)
    assert job.status == "succeeded", job.error
    return job


def test_a_transformer_job_lowers_perplexity_and_registers_a_folder(
    platform: Platform, first_job: Job, tmp_path: Path
) -> None:
    c, job = platform.client, first_job
    assert (platform.dataset.format, platform.dataset.row_count) == ("text", 80)

    metrics = [m.metrics for m in c.job_metrics(job.id)]
    perplexities = [m["val_perplexity"] for m in metrics]
    assert len(perplexities) == 3 and perplexities[0] > perplexities[1] > perplexities[2], perplexities
    log = [line.message for line in c.job_logs(job.id).lines]
    assert any("64 training documents, 16 validation documents" in line for line in log)
    assert any(line.startswith("language model: ") for line in log)

    version = c.get_version("stories-lm", job.result_version or 0)
    assert version.flavor == "hf-causal-lm" and version.source == f"job:{job.id}"
    assert version.metrics["perplexity"] == pytest.approx(perplexities[-1])
    lineage = version.lineage or {}
    assert (lineage["family"], lineage["task"], lineage["dataset"]["name"]) == (
        "transformer",
        "text-generation",
        "stories",
    )
    assert lineage["reference_statistics"]["text"]["documents"] == 80
    assert version.params["context_length"] == 32 and version.params["vocab_size"] == 300

    # The registered artifact is a Hugging Face folder that transformers loads offline.
    response = httpx.get(
        f"{platform.api.url}/api/v1/models/stories-lm/versions/{version.version}/artifact",
        timeout=60,
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path, filter="data")
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    folder = next(tmp_path.rglob("config.json")).parent
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}, names
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    out = model.generate(**tokenizer("The quick", return_tensors="pt"), max_new_tokens=6, do_sample=False)
    assert tokenizer.decode(out[0]).startswith("The quick")


def test_a_transformer_needs_a_text_dataset_and_no_target(platform: Platform) -> None:
    import yaml

    c = platform.client
    c.create_dataset("tabular", sample="iris")
    # Refused by the control plane, which knows the datasets and the registry.
    against_data = {
        "dataset: tabular\nmodel: {family: transformer}\n": ("dataset", "has no text column"),
        "dataset: stories\nmodel: {family: mlp}\n": ("target", "registered without a target"),
        "dataset: stories\nmodel: {family: transformer}\nwarm_start: {model: nothing, version: 1}\n": (
            "warm_start",
            "not found",
        ),
    }
    for text, (field, message) in against_data.items():
        response = httpx.post(
            f"{platform.api.url}/api/v1/jobs", json=yaml.safe_load(text), timeout=30, headers=AUTH
        )
        assert response.status_code == 400, (text, response.text)
        error = response.json()["error"]
        assert error["details"]["field"] == field, (text, error)
        assert message in error["message"], (text, error)
    # Refused by the spec itself, before anything is sent (and by the server as well).
    in_the_spec = {
        "dataset: stories\ntarget: text\nmodel: {family: transformer}\n": ("target", "no target"),
        "dataset: stories\nmodel: {family: transformer, n_embd: 30, n_head: 4}\n": (
            "model.n_embd",
            "multiple of n_head",
        ),
        "dataset: stories\nmodel: {family: transformer, hidden_sizes: [8]}\n": (
            "model.hidden_sizes",
            "not a hyper-parameter",
        ),
        "dataset: stories\nmodel: {family: transformer}\nearly_stopping: {metric: val_accuracy}\n": (
            "early_stopping.metric",
            "not a language model metric",
        ),
    }
    for text, (field, message) in in_the_spec.items():
        with pytest.raises(InvalidArgument) as raised:
            c.submit_job(text)
        assert raised.value.details["field"] == field, (text, raised.value)
        assert message in raised.value.message, (text, raised.value)
        response = httpx.post(
            f"{platform.api.url}/api/v1/jobs", json=yaml.safe_load(text), timeout=30, headers=AUTH
        )
        assert response.status_code == 400 and message in response.json()["error"]["message"], response.text
    assert all(j.dataset != "tabular" for j in c.list_jobs())


def _wait_for_checkpoint(platform: Platform, job_id: int, epoch: int) -> None:
    def reached() -> bool:
        job = platform.client.get_job(job_id)
        assert job.status in ("queued", "running"), job
        return (job.checkpoint_epoch or 0) >= epoch

    wait_until(reached, timeout=600, what=f"job {job_id} to checkpoint epoch {epoch}")


@pytest.mark.slow
def test_a_killed_transformer_job_resumes_exactly(platform: Platform) -> None:
    c = platform.client
    reference = c.wait_for_job(c.submit_job(_spec("stories-reference", epochs=6)).id, timeout=600)
    assert reference.status == "succeeded", reference.error

    job_id = c.submit_job(_spec("stories-killed", epochs=6)).id
    _wait_for_checkpoint(platform, job_id, 2)
    (pid,) = platform.worker_pids()
    os.kill(pid, signal.SIGKILL)
    job = c.wait_for_job(job_id, timeout=600)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    log = "\n".join(line.message for line in c.job_logs(job_id).lines)
    assert "attempt 2 started; resuming after epoch" in log and "resumed after epoch" in log

    killed = c.get_version("stories-killed", job.result_version or 0)
    uninterrupted = c.get_version("stories-reference", reference.result_version or 0)
    assert killed.metrics == pytest.approx(uninterrupted.metrics, rel=1e-9)
    assert killed.params["parameter_digests"] == uninterrupted.params["parameter_digests"]  # same weights
    a = [m.metrics["val_loss"] for m in c.job_metrics(job_id)]
    b = [m.metrics["val_loss"] for m in c.job_metrics(reference.id)]
    assert a == pytest.approx(b, rel=1e-9) and len(a) == 6


def test_fine_tuning_the_registered_model_on_new_text(platform: Platform, first_job: Job) -> None:
    c = platform.client
    parent = c.get_version("stories-lm", first_job.result_version or 0)
    c.create_dataset("more-stories", _corpus(30, seed=7).encode(), filename="more.txt")
    spec = (
        "dataset: more-stories\nmodel: {family: transformer}\noptimizer: {name: adamw, lr: 0.001}\n"
        f"epochs: 1\nbatch_size: 8\nwarm_start: {{model: stories-lm, version: {parent.version}}}\n"
    )
    job = c.wait_for_job(c.submit_job(spec).id, timeout=600)
    assert job.status == "succeeded", job.error
    cold_spec = _spec("stories-cold", epochs=1).replace("dataset: stories", "dataset: more-stories")
    cold = c.wait_for_job(c.submit_job(cold_spec).id, timeout=600)
    assert cold.status == "succeeded", cold.error
    assert job.register_as == "stories-lm"
    tuned = c.get_version("stories-lm", job.result_version or 0)
    assert tuned.parent_version == parent.version
    assert (tuned.lineage or {})["parent"] == {"model": "stories-lm", "version": parent.version}
    assert tuned.params["n_layer"] == 2 and tuned.params["context_length"] == 32  # the parent's
    log = "\n".join(line.message for line in c.job_logs(job.id).lines)
    assert "warm start: fine-tuning the weights of the given model, with its tokenizer" in log
    a, b = (c.download_artifact("stories-lm", v) for v in (parent.version, tuned.version))
    assert _member(a, "tokenizer.json") == _member(b, "tokenizer.json")  # the tokenizer is kept
    # It starts from what the parent learnt: after one epoch, far better than a cold start.
    warm_first = c.job_metrics(job.id)[0].metrics["val_perplexity"]
    cold_first = c.job_metrics(cold.id)[0].metrics["val_perplexity"]
    assert warm_first < 0.5 * cold_first, (warm_first, cold_first)


def _member(tar: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        member = next(m for m in archive.getmembers() if m.name.rsplit("/", 1)[-1] == name)
        handle = archive.extractfile(member)
        assert handle is not None
        return handle.read()
