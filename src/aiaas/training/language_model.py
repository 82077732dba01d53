"""The epoch loop of the ``transformer`` family: next-token prediction on a text dataset.

Data. The tokenizer is trained on the training documents (byte-level BPE, see
:mod:`aiaas.training.tokenizer`), or inherited from the model a job warm-starts from, or read
from the checkpoint a job resumes from. Each split is one stream of token ids, an end-of-text
token after every document, cut into blocks of ``context_length + 1`` tokens that overlap by
one: block ``i`` holds tokens ``i*T .. i*T+T``, the model reads the first ``T`` and predicts
the last ``T``, so every token after the first is predicted exactly once. Training drops the
last, shorter block; validation keeps it, so every validation token counts.

Metric. ``val_loss`` is the mean cross-entropy (nats) per predicted validation token, and
``val_perplexity = exp(val_loss)``; ``loss`` is the same mean over the epoch's training tokens.

Exact resume, as for the MLP/CNN (:mod:`aiaas.training.torch_trainer`): the model is built
from ``seed``, each epoch's block order depends on (seed, epoch) only, and each checkpoint holds
the weights, optimiser, scheduler, early-stopping state, history, every RNG state, the model's
config and the tokenizer. A resumed run therefore repeats the uninterrupted run's arithmetic on
the same thread count, device and number of ranks; data-parallel ranks draw alike and keep
equal per-rank batches, as the MLP's do.

Gradients are clipped to a global norm of :data:`GRAD_CLIP_NORM`, as transformer training
usually does: one unlucky batch cannot throw the weights far.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from aiaas.errors import InvalidArgument
from aiaas.schemas.training import TEXT_GENERATION, TRANSFORMER_DEFAULTS, JobSpec
from aiaas.training.causal_lm import build_model, config_text, context_length, export_folder, gpt2_config
from aiaas.training.checkpoint import load_torch_state, save_torch_state
from aiaas.training.epochs import EpochBook, seed_all
from aiaas.training.group import Group
from aiaas.training.optim import build_optimizer, build_scheduler
from aiaas.training.reporter import Reporter
from aiaas.training.result import TrainingResult
from aiaas.training.text_data import CHAT_TEMPLATE, TextData, TokenizedText
from aiaas.training.tokenizer import (
    EOS_TOKEN,
    encode_documents,
    token_id,
    tokenizer_files,
    train_tokenizer,
    vocab_size,
)

__all__ = [
    "FAMILY",
    "GRAD_CLIP_NORM",
    "language_model_params",
    "prepare_text",
    "train_language_model",
    "warm_start_state",
]

FAMILY = "transformer"
#: Largest global gradient norm of a step (``torch.nn.utils.clip_grad_norm_``).
GRAD_CLIP_NORM = 1.0
#: Sequences evaluated at once.
_EVAL_BATCH = 64
#: ``exp`` of a larger loss overflows a float; the perplexity is reported as exp(700) then.
_MAX_LOG_PERPLEXITY = 700.0

Ids = np.ndarray[Any, np.dtype[np.int64]]


def warm_start_state(files: dict[str, bytes]) -> bytes:
    """The ``warm_start`` bytes of a registered causal LM folder: its weights, config and
    tokenizer, in the checkpoint format (read back without unpickling anything)."""
    from aiaas.training.causal_lm import read_folder_model

    return save_torch_state({"family": FAMILY, "kind": "folder", **read_folder_model(files)})


def language_model_params(spec: JobSpec, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Effective hyper-parameters: the spec's over the defaults, or, when fine-tuning the model
    of a ``warm_start`` state ``base``, that model's (the spec may repeat them, or shorten the
    context, or change dropout).

    Raises:
        InvalidArgument: the spec asks for another architecture or vocabulary than the
            warm-start model has, or a context longer than it takes.
    """
    m = spec.model
    given = {k: getattr(m, k) for k in TRANSFORMER_DEFAULTS}
    if base is None:
        return {k: TRANSFORMER_DEFAULTS[k] if v is None else v for k, v in given.items()}
    config = _config_values(base["config"])
    longest = context_length(base["config"]) or TRANSFORMER_DEFAULTS["context_length"]
    inherited = {
        "n_layer": config.get("n_layer", config.get("num_hidden_layers")),
        "n_head": config.get("n_head", config.get("num_attention_heads")),
        "n_embd": config.get("n_embd", config.get("hidden_size")),
        "vocab_size": vocab_size(base["tokenizer"]),
    }
    for key, value in inherited.items():
        if given[key] is not None and given[key] != value:
            raise InvalidArgument(
                f"model.{key}: the warm-start model has {key}={value}; fine-tuning keeps its architecture "
                f"and tokenizer, so leave {key} out (got {given[key]})",
                details={"field": f"model.{key}"},
            )
    context = given["context_length"] or longest
    if context > longest:
        raise InvalidArgument(
            f"model.context_length: the warm-start model takes at most {longest} tokens; got {context}",
            details={"field": "model.context_length"},
        )
    dropout = given["dropout"] if given["dropout"] is not None else TRANSFORMER_DEFAULTS["dropout"]
    return {**inherited, "context_length": context, "dropout": dropout}


def prepare_text(
    spec: JobSpec, data: TextData, *, resume: bytes | None = None, warm_start: bytes | None = None
) -> TokenizedText:
    """Tokenize both splits: with the checkpoint's tokenizer (resume), the warm-start model's
    (fine-tuning keeps it), or a new one trained on the training documents."""
    data.check()
    source = resume if resume is not None else warm_start
    if source is not None:
        state = _state(source, "resume" if resume is not None else "warm_start")
        tokenizer, files, eos_id = (
            str(state["tokenizer"]),
            dict(state["tokenizer_files"]),
            int(state["eos_id"]),
        )
        if data.chat and resume is None:
            files = _with_chat_template(files)
    else:
        params = language_model_params(spec)
        tokenizer = train_tokenizer(data.train, int(params["vocab_size"]), chat=data.chat)
        files = tokenizer_files(tokenizer, context_length=int(params["context_length"]), chat=data.chat)
        found = token_id(tokenizer, EOS_TOKEN)
        assert found is not None  # a special token of every tokenizer trained here
        eos_id = found
    return TokenizedText(
        train_ids=encode_documents(tokenizer, data.train, eos_id),
        validation_ids=encode_documents(tokenizer, data.validation, eos_id),
        tokenizer=tokenizer,
        tokenizer_files=files,
        eos_id=eos_id,
        vocab_size=vocab_size(tokenizer),
        documents=(len(data.train), len(data.validation)),
        chat=data.chat,
    )


def train_language_model(
    spec: JobSpec,
    data: TokenizedText,
    reporter: Reporter,
    *,
    resume: bytes | None = None,
    warm_start: bytes | None = None,
    group: Group | None = None,
) -> TrainingResult:
    """Train (or fine-tune) a causal LM on tokenized text; see the module docstring.

    In a data-parallel run every rank calls this with the same data; only rank 0 reports and
    checkpoints, and every rank returns the same result.

    Raises:
        InvalidArgument: ``resume``/``warm_start`` are not states of a language model, or
            belong to another tokenizer than ``data``'s.
    """
    group = group or Group()
    device = torch.device(group.device)
    state = _state(resume, "resume") if resume is not None else None
    warm = _state(warm_start, "warm_start") if warm_start is not None and state is None else None
    base = state or warm
    if base is not None and str(base["tokenizer"]) != data.tokenizer:
        field = "resume" if state is not None else "warm_start"
        raise InvalidArgument(
            f"{field} holds a model of another tokenizer than the one the data was tokenized with",
            details={"field": field},
        )
    params = dict(state["params"]) if state is not None else language_model_params(spec, warm)
    params["vocab_size"] = data.vocab_size
    data.check(int(params["context_length"]))

    seed_all(spec.seed)
    if state is not None:
        model = build_model(str(state["config"]))
    elif warm is not None:
        model = build_model(str(warm["config"]), dropout=float(params["dropout"]))
        _load(model, warm["model"], "warm_start")
        reporter.log("warm start: fine-tuning the weights of the given model, with its tokenizer")
    else:
        model = build_model(gpt2_config(params, vocab_size=data.vocab_size, eos_id=data.eos_id))
    config = config_text(model)
    model.to(device)
    optimizer = build_optimizer(spec.optimizer, model.parameters())
    scheduler = build_scheduler(spec.schedule, optimizer, spec.epochs)
    book = EpochBook(spec, model, optimizer, scheduler, reporter, group)
    if state is not None:
        _load(model, state["model"], "resume")
        book.resume(state)
    _check_same_data(data, group)

    network: torch.nn.Module = model
    if group.distributed:
        network = torch.nn.parallel.DistributedDataParallel(model)
    block = int(params["context_length"])
    train_blocks = torch.from_numpy(_blocks(data.train_ids, block, keep_tail=False)).to(device)
    val_blocks = _blocks(data.validation_ids, block, keep_tail=True)
    sampler: DistributedSampler[Any] = DistributedSampler(
        range(len(train_blocks)),  # type: ignore[arg-type]  # a sized sequence is all it needs
        num_replicas=group.world_size,
        rank=group.rank,
        shuffle=True,
        seed=spec.seed,
    )
    per_rank_batch = max(1, math.ceil(spec.batch_size / group.world_size))
    total_params = sum(p.numel() for p in model.parameters())
    if book.start == 0:
        reporter.log(
            f"language model: {total_params:,} parameters, vocabulary {data.vocab_size}, context {block}; "
            f"{data.train_ids.size:,} training tokens in {len(train_blocks)} blocks, "
            f"{data.validation_ids.size:,} validation tokens"
        )

    def snapshot(epoch: int) -> bytes:
        return save_torch_state(
            {
                "family": FAMILY,
                "kind": "checkpoint",
                "params": params,
                "config": config,
                "tokenizer": data.tokenizer,
                "tokenizer_files": data.tokenizer_files,
                "eos_id": data.eos_id,
                **book.state(epoch),
            }
        )

    epoch = book.start
    for epoch in book.epochs():
        if book.stopped:
            break
        began = time.perf_counter()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(sampler)), dtype=torch.int64, device=device)
        network.train()
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, tokens, sequences
        for i in range(0, len(order), per_rank_batch):
            batch = train_blocks[order[i : i + per_rank_batch]]
            inputs, targets = batch[:, :-1], batch[:, 1:]
            optimizer.zero_grad(set_to_none=True)
            # An explicit mask: the end-of-text id is also the padding id, and without it
            # transformers warns that the input may be padded (it never is here).
            mask = torch.ones_like(inputs)
            logits = network(input_ids=inputs, attention_mask=mask, use_cache=False).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
            optimizer.step()
            counts = torch.tensor([targets.numel(), len(batch)], dtype=torch.float64, device=device)
            totals += torch.cat([(loss.detach().double() * counts[0]).reshape(1), counts])
        if group.distributed:
            torch.distributed.all_reduce(totals)
        train_s = time.perf_counter() - began
        lr = float(optimizer.param_groups[0]["lr"])
        scheduler.step()
        val_loss = _evaluate(model, val_blocks, device)
        metrics = {
            "loss": float(totals[0] / totals[1]),
            "val_loss": val_loss,
            "val_perplexity": _perplexity(val_loss),
            "tokens_per_s": float(totals[1]) / train_s if train_s > 0 else math.inf,
            "samples_per_s": float(totals[2]) / train_s if train_s > 0 else math.inf,
            "lr": lr,
        }
        if book.end_epoch(epoch, metrics, began, snapshot):
            break

    digests = book.finish()
    val_loss = _evaluate(model, val_blocks, device)
    # transformers saves a model on rank 0 only when a process group exists; so do we.
    package = export_folder(model.cpu(), data.tokenizer_files) if group.rank == 0 else None
    model.to(device)
    return TrainingResult(
        package=package,
        metrics={"perplexity": _perplexity(val_loss), "cross_entropy": val_loss},
        params={
            "family": FAMILY,
            "task": TEXT_GENERATION,
            **params,
            "architecture": _architecture(model),
            "parameters": total_params,
            "chat": data.chat,
            "documents": {"train": data.documents[0], "validation": data.documents[1]},
            "tokens": {"train": int(data.train_ids.size), "validation": int(data.validation_ids.size)},
            **book.params(digests),
        },
        history=book.history,
        state=snapshot(epoch),
    )


def _architecture(model: torch.nn.Module) -> str:
    config: Any = model.config
    return str((config.architectures or [type(model).__name__])[0])


def _state(blob: bytes, field: str) -> dict[str, Any]:
    state = load_torch_state(blob, field=field)
    if state.get("family") != FAMILY:
        raise InvalidArgument(
            f"{field} is the state of a {state.get('family')!r} model, not of a {FAMILY!r}",
            details={"field": field},
        )
    return state


def _load(model: torch.nn.Module, weights: dict[str, torch.Tensor], field: str) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise InvalidArgument(
            f"{field} does not fit this model's layers: {exc}", details={"field": field}
        ) from None


def _config_values(config_json: str) -> dict[str, Any]:
    import json

    values: dict[str, Any] = json.loads(config_json)
    return values


def _with_chat_template(files: dict[str, str]) -> dict[str, str]:
    """A warm-start tokenizer that has no chat template gets the one its chat documents used."""
    import json

    if "chat_template.jinja" in files or "tokenizer_config.json" not in files:
        return files
    config = json.loads(files["tokenizer_config.json"])
    if config.get("chat_template"):
        return files
    return {**files, "chat_template.jinja": CHAT_TEMPLATE}


def _blocks(ids: Ids, block: int, *, keep_tail: bool) -> Ids:
    """Rows of ``block + 1`` tokens, overlapping by one; a stream shorter than one block is one
    short row; ``keep_tail`` adds the last, shorter row (validation) as its own array row
    padded with -1, which the loss ignores."""
    n = (ids.size - 1) // block
    if n == 0:
        short: Ids = ids[None, :].copy()
        return short
    starts = np.arange(n, dtype=np.int64)[:, None] * block
    rows: Ids = ids[starts + np.arange(block + 1, dtype=np.int64)]
    tail = ids[n * block :]
    if keep_tail and tail.size > 1:
        padded = np.full(block + 1, -1, dtype=np.int64)
        padded[: tail.size] = tail
        rows = np.concatenate([rows, padded[None, :]])
    return rows


@torch.no_grad()
def _evaluate(model: torch.nn.Module, blocks: Ids, device: torch.device) -> float:
    """Mean cross-entropy per predicted token over every validation block (-1 is padding)."""
    model.eval()
    loss_sum, count = 0.0, 0
    for i in range(0, len(blocks), _EVAL_BATCH):
        batch = torch.from_numpy(blocks[i : i + _EVAL_BATCH]).to(device)
        inputs, targets = batch[:, :-1].clamp(min=0), batch[:, 1:]
        # Padding sits after the tokens it pads, so causal attention never lets it change them.
        logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs), use_cache=False).logits
        flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        loss_sum += float(F.cross_entropy(flat_logits, flat_targets, ignore_index=-1, reduction="sum"))
        count += int((targets >= 0).sum())
    return loss_sum / max(count, 1)


def _perplexity(loss: float) -> float:
    return math.exp(min(loss, _MAX_LOG_PERPLEXITY))


def _check_same_data(data: TokenizedText, group: Group) -> None:
    """Every rank must train on the same tokens: each tokenized the data itself."""
    if not group.distributed:
        return
    digest = hashlib.sha256(data.tokenizer.encode())
    digest.update(data.train_ids.tobytes())
    digest.update(data.validation_ids.tobytes())
    local = torch.tensor([int(digest.hexdigest()[:15], 16)], dtype=torch.int64, device=group.device)
    gathered = [torch.zeros_like(local) for _ in range(group.world_size)]
    torch.distributed.all_gather(gathered, local)
    if len({int(t.item()) for t in gathered}) != 1:
        raise RuntimeError(
            "data-parallel ranks tokenized the text differently; they must share one tokenizer"
        )
