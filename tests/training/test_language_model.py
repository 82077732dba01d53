"""The ``transformer`` family on plain documents: perplexity falls epoch after epoch, the saved
Hugging Face folder is the trained model (transformers loads it offline and scores the same
perplexity), a killed run resumes exactly, chat pairs get a chat template, fine-tuning keeps
the parent's tokenizer, and text given to the wrong family is refused."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from aiaas.errors import InvalidArgument
from aiaas.formats import HF_CAUSAL_LM, FolderPackage
from aiaas.training import MemoryReporter, TrainingData, TrainingResult, train
from aiaas.training.checkpoint import load_torch_state
from aiaas.training.language_model import warm_start_state
from aiaas.training.text_data import TextData, chat_document
from aiaas.training.tokenizer import EOS_TOKEN, encode_documents, train_tokenizer
from tests.training.conftest import spec

ADJECTIVES = ["quick", "lazy", "red", "small", "happy", "old", "brave"]
NOUNS = ["fox", "dog", "cat", "bird", "horse", "mouse", "owl"]
VERBS = ["jumps over", "chases", "sees", "likes", "follows"]


def corpus(documents: int, seed: int = 0) -> list[str]:
    """A few KB of text with structure to learn: three sentences of one grammar per document."""
    rng = random.Random(seed)

    def sentence() -> str:
        a, b = rng.choice(ADJECTIVES), rng.choice(ADJECTIVES)
        return f"The {a} {rng.choice(NOUNS)} {rng.choice(VERBS)} the {b} {rng.choice(NOUNS)}."

    return [" ".join(sentence() for _ in range(3)) for _ in range(documents)]


DOCS = corpus(60)
TEXT = TextData(DOCS[:48], DOCS[48:])
#: About 120k parameters: two blocks of width 64, a 300-token vocabulary, 32 tokens of context.
MODEL = {
    "family": "transformer",
    "n_layer": 2,
    "n_head": 2,
    "n_embd": 64,
    "context_length": 32,
    "vocab_size": 300,
}


def lm_spec(**fields: Any) -> Any:
    return spec(
        **{
            "model": MODEL,
            "epochs": 3,
            "batch_size": 8,
            "optimizer": {"name": "adamw", "lr": 0.003},
            **fields,
        }
    )


def _write(package: FolderPackage, folder: Path) -> Path:
    for name, data in package.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _perplexity_with_transformers(folder: Path, documents: list[str], context: int) -> float:
    """Perplexity of the validation stream computed by transformers' own loss on the folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    ids: list[int] = []
    for doc in documents:
        ids += [*tokenizer(doc)["input_ids"], tokenizer.eos_token_id]
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, context):
            chunk = torch.tensor([ids[start : start + context + 1]])
            if chunk.shape[1] < 2:
                break
            out = model(input_ids=chunk[:, :-1], labels=chunk[:, :-1].clone())
            # labels shift inside the model: score the chunk's own next tokens instead.
            logits = out.logits[0]
            loss = torch.nn.functional.cross_entropy(logits, chunk[0, 1:], reduction="sum")
            total, count = total + float(loss), count + chunk.shape[1] - 1
    return math.exp(total / count)


@pytest.fixture(scope="module")
def trained() -> tuple[TrainingResult, MemoryReporter]:
    torch.set_num_threads(1)
    reporter = MemoryReporter()
    return train(lm_spec(model={**MODEL, "dropout": 0.1}), TEXT, reporter), reporter


def test_validation_perplexity_falls_every_epoch(trained: tuple[TrainingResult, MemoryReporter]) -> None:
    result, reporter = trained
    assert [e for e, _ in reporter.epochs] == [1, 2, 3]
    assert [e for e, _ in reporter.checkpoints] == [1, 2, 3]
    perplexities = [m["val_perplexity"] for _, m in reporter.epochs]
    assert perplexities[0] > perplexities[1] > perplexities[2], perplexities
    assert perplexities[0] < 300  # already better than guessing among the 300 tokens
    first = reporter.epochs[0][1]
    assert {"loss", "val_loss", "val_perplexity", "tokens_per_s", "samples_per_s", "lr", "epoch_s"} <= set(
        first
    )
    for _, m in reporter.epochs:
        assert m["val_perplexity"] == pytest.approx(math.exp(m["val_loss"]))
    assert result.metrics["perplexity"] == pytest.approx(perplexities[-1])
    params = result.params
    assert (params["family"], params["task"], params["architecture"]) == (
        "transformer",
        "text-generation",
        "GPT2LMHeadModel",
    )
    assert (params["n_layer"], params["n_head"], params["n_embd"], params["context_length"]) == (2, 2, 64, 32)
    assert params["vocab_size"] == 300 and 100_000 < params["parameters"] < 200_000
    assert params["documents"] == {"train": 48, "validation": 12}


def test_the_saved_folder_is_the_trained_model(
    trained: tuple[TrainingResult, MemoryReporter], tmp_path: Path
) -> None:
    result, _ = trained
    package = result.package
    assert isinstance(package, FolderPackage) and package.flavor == HF_CAUSAL_LM
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(
        package.files
    )
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in package.files)  # no pickle
    assert package.signature.parameters["context_length"] == 32
    assert package.signature.parameters["parameters"] == result.params["parameters"]
    folder = _write(package, tmp_path)
    # transformers itself, offline, scores the validation text as the trainer did.
    measured = _perplexity_with_transformers(folder, TEXT.validation, 32)
    assert measured == pytest.approx(result.metrics["perplexity"], rel=1e-4)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert tokenizer.eos_token == EOS_TOKEN and tokenizer.model_max_length == 32
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    prompt = tokenizer("The quick", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    text = tokenizer.decode(out[0], skip_special_tokens=True)
    assert text.startswith("The quick") and len(text) > len("The quick")


class _Crash(Exception):
    pass


class _StopAfter(MemoryReporter):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.stop_after = epoch

    def checkpoint(self, epoch: int, state: bytes) -> None:
        super().checkpoint(epoch, state)
        if epoch == self.stop_after:
            raise _Crash


def _without_time(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [
        {k: v for k, v in h.items() if k not in ("tokens_per_s", "samples_per_s", "epoch_s")} for h in history
    ]


def test_resume_after_a_kill_ends_exactly_like_an_uninterrupted_run() -> None:
    job = lm_spec(
        model={**MODEL, "dropout": 0.2},
        epochs=4,
        seed=5,
        schedule={"name": "step", "step_size": 2, "gamma": 0.5},
        early_stopping={"metric": "val_perplexity", "patience": 10, "restore_best": False},
    )
    full = train(job, TEXT, MemoryReporter())
    interrupted = _StopAfter(2)
    with pytest.raises(_Crash):
        train(job, TEXT, interrupted)
    checkpoint = interrupted.checkpoints[-1][1]
    assert load_torch_state(checkpoint, field="resume")["tokenizer"]  # the tokenizer travels with it
    reporter = MemoryReporter()
    resumed = train(job, TEXT, reporter, resume=checkpoint)
    assert [e for e, _ in reporter.epochs] == [3, 4]
    assert reporter.logs[0] == "resumed after epoch 2"
    assert resumed.metrics == full.metrics
    assert _without_time(resumed.history) == _without_time(full.history)
    a, b = (load_torch_state(r.state, field="state")["model"] for r in (full, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.package.files["model.safetensors"] == full.package.files["model.safetensors"]  # type: ignore[union-attr]


def test_early_stopping_on_validation_perplexity_keeps_the_best_epoch() -> None:
    reporter = MemoryReporter()
    # A learning rate this high makes the validation perplexity climb again after a while.
    result = train(
        lm_spec(
            epochs=8,
            optimizer={"name": "sgd", "lr": 8.0},
            early_stopping={"metric": "val_perplexity", "patience": 1},
        ),
        TEXT,
        reporter,
    )
    perplexities = [m["val_perplexity"] for _, m in reporter.epochs]
    best = min(perplexities)
    assert result.params["epochs_run"] == len(perplexities) < 8
    assert result.metrics["perplexity"] == pytest.approx(best)
    assert result.params["best_epoch"] == perplexities.index(best) + 1


TOKENIZE_IN_CHILD = """
import json, sys
from aiaas.training.tokenizer import train_tokenizer
print(train_tokenizer(json.loads(sys.stdin.read()), 300))
"""


def test_the_tokenizer_is_the_same_in_every_process_and_round_trips_any_text() -> None:
    here = train_tokenizer(TEXT.train, 300)
    child = subprocess.run(
        [sys.executable, "-c", TOKENIZE_IN_CHILD],
        input=json.dumps(TEXT.train),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == here  # data-parallel ranks each tokenize: they must agree
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(here)
    assert tokenizer.get_vocab_size() == 300
    for text in ["The quick fox", "Ünïcödé, 東京 and 🙂 are bytes too", "  two  spaces\nand a line"]:
        assert tokenizer.decode(tokenizer.encode(text).ids) == text  # byte-level: nothing is unknown
    # Frequent words of the training split became single tokens.
    assert len(tokenizer.encode(" fox").ids) == 1
    ids = encode_documents(here, ["a b", "c"], eos_id=0)
    assert ids.tolist().count(0) == 2 and ids[-1] == 0  # an end-of-text after each document


def test_chat_pairs_train_a_model_with_a_chat_template(tmp_path: Path) -> None:
    rng = random.Random(1)
    pairs = [
        (f"what does the {n} do?", f"The {n} {rng.choice(VERBS)} the {rng.choice(NOUNS)}.") for n in NOUNS * 6
    ]
    docs = [chat_document(p, r) for p, r in pairs]
    result = train(lm_spec(epochs=1), TextData(docs[:34], docs[34:], chat=True), MemoryReporter())
    assert result.params["chat"] is True
    folder = _write(result.package, tmp_path)  # type: ignore[arg-type]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": pairs[0][0]}, {"role": "assistant", "content": pairs[0][1]}],
        tokenize=False,
    )
    assert rendered == docs[0] + EOS_TOKEN  # a conversation renders exactly as it was trained
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|user|>\nhi\n<|assistant|>\n"
    assert len(tokenizer("<|assistant|>")["input_ids"]) == 1  # role markers are single tokens


def test_fine_tuning_a_registered_folder_keeps_its_tokenizer(
    trained: tuple[TrainingResult, MemoryReporter],
) -> None:
    parent, _ = trained
    files = parent.package.files  # type: ignore[union-attr]
    new_text = TextData(corpus(30, seed=9)[:24], corpus(30, seed=9)[24:])
    warm = warm_start_state(files)
    reporter = MemoryReporter()
    tuned = train(lm_spec(model={"family": "transformer"}, epochs=1), new_text, reporter, warm_start=warm)
    assert tuned.package.files["tokenizer.json"] == files["tokenizer.json"]  # type: ignore[union-attr]
    assert (tuned.params["n_layer"], tuned.params["n_embd"], tuned.params["context_length"]) == (2, 64, 32)
    assert any(line.startswith("warm start") for line in reporter.logs)
    fresh = MemoryReporter()
    train(lm_spec(epochs=1), new_text, fresh)
    # Starting from a model of the same kind of text beats starting from nothing.
    assert reporter.epochs[0][1]["val_perplexity"] < fresh.epochs[0][1]["val_perplexity"]
    with pytest.raises(
        InvalidArgument, match=r"model\.n_layer: the warm-start model has n_layer=2\b"
    ) as raised:
        train(
            lm_spec(model={"family": "transformer", "n_layer": 3}),
            new_text,
            MemoryReporter(),
            warm_start=warm,
        )
    assert raised.value.details["field"] == "model.n_layer"
    with pytest.raises(InvalidArgument, match="takes at most 32 tokens"):
        train(
            lm_spec(model={"family": "transformer", "context_length": 64}),
            new_text,
            MemoryReporter(),
            warm_start=warm,
        )


def test_text_and_arrays_go_to_the_families_that_learn_them(iris: TrainingData) -> None:
    with pytest.raises(
        InvalidArgument, match="learns text, and this dataset holds numeric features"
    ) as raised:
        train(lm_spec(), iris, MemoryReporter())
    assert raised.value.details["field"] == "model.family"
    with pytest.raises(InvalidArgument, match="learns from numeric features, and this dataset is text"):
        train(spec(model={"family": "mlp"}), TEXT, MemoryReporter())
    mlp_state = train(spec(model={"family": "mlp"}, epochs=1), iris, MemoryReporter()).state
    with pytest.raises(InvalidArgument, match="resume is the state of a 'mlp' model, not of a 'transformer'"):
        train(lm_spec(), TEXT, MemoryReporter(), resume=mlp_state)
    with pytest.raises(InvalidArgument, match="the train split holds no text"):
        train(lm_spec(), TextData(["  ", ""], ["x"]), MemoryReporter())


@pytest.mark.slow
def test_two_workers_train_one_model_and_resume_exactly() -> None:
    job = lm_spec(model={**MODEL, "dropout": 0.1}, workers=2, seed=2)
    reporter = MemoryReporter()
    full = train(job, TEXT, reporter)
    digests = full.params["parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # gloo kept the ranks in step
    assert full.params["workers"] == 2
    assert any("over 2 processes" in line for line in reporter.logs)
    perplexities = [m["val_perplexity"] for _, m in reporter.epochs]
    assert perplexities[0] > perplexities[1] > perplexities[2], perplexities

    interrupted = _StopAfter(1)
    with pytest.raises(_Crash):
        train(job, TEXT, interrupted)
    resumed = train(job, TEXT, MemoryReporter(), resume=interrupted.checkpoints[-1][1])
    assert resumed.metrics == full.metrics
    a, b = (load_torch_state(r.state, field="state")["model"] for r in (full, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_chat_dataset_split_becomes_chat_documents() -> None:
    import numpy as np

    from aiaas.datasets import DatasetVersion
    from aiaas.training.service import _text_data

    version = DatasetVersion(
        dataset="chat", version=1, artifact_digest="0" * 64, format="jsonl", size_bytes=1, row_count=4,
        schema=[], statistics={}, target=None, task="text-generation", split={}, description="",
        metadata={"text": {"columns": ["q", "a"], "prompt_column": "q", "response_column": "a"}},
        created_at=None,  # type: ignore[arg-type]
    )  # fmt: skip
    texts = {"q": ["hi", "2+2?", None, "colour?"], "a": ["hello", "4", "orphan", "  "]}
    data = _text_data(version, texts, np.array([0, 2, 3]), np.array([1]))
    assert data.chat is True
    assert data.train == [chat_document("hi", "hello")]  # pairs missing a side are left out
    assert data.validation == ["<|user|>\n2+2?\n<|assistant|>\n4"]
