"""The epoch loop of the PyTorch families (MLP, CNN), single-process or data-parallel.

Exact resume: the model is initialised from ``seed``; each epoch's order comes from a
:class:`~torch.utils.data.DistributedSampler` seeded with ``seed`` and ``set_epoch(epoch)``
(so it depends on (seed, epoch) only, never on what ran before); and each checkpoint holds
the model, optimiser, scheduler, early-stopping state, history and the torch/numpy/Python
RNG states (dropout draws from torch's). Loading the checkpoint of epoch k and running on
therefore repeats exactly the arithmetic of an uninterrupted run, on the same thread count
and device. That holds for data-parallel runs too (on the same number of ranks): every rank
seeds its generators alike and draws the same amounts (equal per-rank batches), so rank 0's
saved RNG state is every rank's, and each rank restores it.

Early stopping restores the best epoch's weights by default (``restore_best``); the
returned metrics, package and state are those of the weights returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler, TensorDataset

from aiaas.errors import InvalidArgument
from aiaas.schemas.training import JobSpec
from aiaas.training.checkpoint import load_torch_state, save_torch_state
from aiaas.training.data import TrainingData
from aiaas.training.epochs import EpochBook, seed_all
from aiaas.training.export import export_network
from aiaas.training.group import Group
from aiaas.training.metrics import classification_metrics, regression_metrics
from aiaas.training.networks import Network, build_network
from aiaas.training.optim import build_optimizer, build_scheduler
from aiaas.training.reporter import Reporter
from aiaas.training.result import TrainingResult

__all__ = ["SoftTargets", "torch_params", "train_torch"]

_EVAL_BATCH = 4096


@dataclass(frozen=True)
class SoftTargets:
    """A teacher's outputs on the training rows, for knowledge distillation.

    The loss becomes ``alpha * soft + (1 - alpha) * hard``: for classification ``soft`` is the
    KL divergence between the student's and the teacher's outputs softened by ``temperature``
    (scaled by its square, so gradients keep their size as the temperature changes) and
    ``hard`` the cross-entropy with the labels; for regression both are mean squared errors
    (against the teacher's standardised output, and against the standardised target).

    Attributes:
        outputs: the teacher's raw outputs (logits, or its standardised prediction), one row per
            training row, in the order of ``TrainingData.x_train``.
        temperature: softening of both sides' logits (classification).
        alpha: weight of the soft-target term.
    """

    outputs: np.ndarray[Any, Any]
    temperature: float
    alpha: float

    def loss(
        self, out: torch.Tensor, target: torch.Tensor, teacher: torch.Tensor, classify: bool
    ) -> torch.Tensor:
        if not classify:
            return self.alpha * F.mse_loss(out, teacher) + (1 - self.alpha) * _mse(out, target)
        t = self.temperature
        soft = F.kl_div(F.log_softmax(out / t, dim=1), F.softmax(teacher / t, dim=1), reduction="batchmean")
        return self.alpha * t * t * soft + (1 - self.alpha) * F.cross_entropy(out, target)


def torch_params(spec: JobSpec) -> dict[str, Any]:
    """Effective hyper-parameters of a PyTorch family, defaults filled in."""
    m = spec.model
    params: dict[str, Any] = {
        "hidden_sizes": list(m.hidden_sizes) if m.hidden_sizes is not None else [64],
        "dropout": m.dropout if m.dropout is not None else 0.0,
        "activation": m.activation or "relu",
    }
    if m.family == "cnn":
        params["channels"] = list(m.channels) if m.channels is not None else [16, 32]
    return params


def train_torch(
    spec: JobSpec,
    data: TrainingData,
    reporter: Reporter,
    *,
    resume: bytes | None = None,
    warm_start: bytes | None = None,
    group: Group | None = None,
    teacher: SoftTargets | None = None,
) -> TrainingResult:
    """Train an MLP or CNN; see the module docstring for what resume guarantees.

    In a data-parallel run (``group.world_size > 1``, process group initialised) every rank
    calls this; only rank 0 reports and checkpoints, and every rank returns the same result.
    With ``teacher`` the network learns from a teacher's soft targets as well as the labels
    (distillation, see :class:`SoftTargets`).
    """
    group = group or Group()
    family = spec.model.family
    classification = data.task == "classification"
    params = torch_params(spec)
    device = torch.device(group.device)

    seed_all(spec.seed)
    network = build_network(family, params, data.n_features, data.n_classes, data.image_shape)
    network.set_scaling(data.x_train, None if classification else data.y_train)
    arch = {"family": family, "n_features": data.n_features, "n_outputs": data.n_classes}
    if warm_start is not None and resume is None:
        _load_weights(network, load_torch_state(warm_start, field="warm_start"), arch, field="warm_start")
        reporter.log("warm start: loaded the weights of the given state")
    network.to(device)
    optimizer = build_optimizer(spec.optimizer, network.parameters())
    scheduler = build_scheduler(spec.schedule, optimizer, spec.epochs)
    book = EpochBook(spec, network, optimizer, scheduler, reporter, group)
    if resume is not None:
        state = load_torch_state(resume, field="resume")
        _load_weights(network, state, arch, field="resume")
        book.resume(state)

    model: torch.nn.Module = network
    if group.distributed:
        model = torch.nn.parallel.DistributedDataParallel(network, forward_sync_buffers=False)
    x_train = torch.from_numpy(data.x_train).to(device)
    y_train = torch.from_numpy(data.y_train).to(device)
    if not classification:
        y_train = (y_train - network.y_mean) / network.y_scale
    sampler: DistributedSampler[Any] = DistributedSampler(
        TensorDataset(x_train), num_replicas=group.world_size, rank=group.rank, shuffle=True, seed=spec.seed
    )
    per_rank_batch = max(1, math.ceil(spec.batch_size / group.world_size))
    loss_fn = F.cross_entropy if classification else _mse
    soft: torch.Tensor | None = None
    if teacher is not None:
        if teacher.outputs.shape != (len(data.x_train), data.n_classes):
            raise InvalidArgument(
                f"teacher outputs have shape {list(teacher.outputs.shape)}; expected "
                f"{[len(data.x_train), data.n_classes]} (one row per training row)",
                details={"field": "teacher"},
            )
        soft = torch.from_numpy(np.ascontiguousarray(teacher.outputs, dtype=np.float32)).to(device)

    def snapshot(epoch: int) -> bytes:
        return save_torch_state({**arch, "params": params, **book.state(epoch)})

    epoch = book.start
    for epoch in book.epochs():
        if book.stopped:
            break
        began = time.perf_counter()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(sampler)), dtype=torch.int64, device=device)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for i in range(0, len(order), per_rank_batch):
            idx = order[i : i + per_rank_batch]
            xb, yb = x_train[idx], y_train[idx]
            optimizer.zero_grad(set_to_none=True)
            if teacher is not None and soft is not None:
                loss = teacher.loss(model(xb), yb, soft[idx], classification)
            else:
                loss = loss_fn(model(xb), yb)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
        totals = torch.stack([loss_sum, torch.tensor(float(len(order)), dtype=torch.float64, device=device)])
        if group.distributed:
            torch.distributed.all_reduce(totals)
        train_s = time.perf_counter() - began
        lr = float(optimizer.param_groups[0]["lr"])
        scheduler.step()
        metrics = {
            "loss": float(totals[0] / totals[1]),
            **{f"val_{k}": v for k, v in _evaluate(network, data, device).items()},
            "samples_per_s": float(totals[1]) / train_s if train_s > 0 else math.inf,
            "lr": lr,
        }
        if book.end_epoch(epoch, metrics, began, snapshot):
            break

    digests = book.finish()
    final = _evaluate(network, data, device)
    final.pop("loss", None)
    package = export_network(
        network, data.x_train[:5], classes=data.class_labels() if classification else None
    )
    network.to(device)
    return TrainingResult(
        package=package,
        metrics=final,
        params={
            **arch,
            "task": data.task,
            **params,
            **book.params(digests),
            "classes": data.class_labels() if classification else None,
        },
        history=book.history,
        state=snapshot(epoch),
    )


def _mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out.squeeze(1), target)


def _load_weights(network: Network, state: dict[str, Any], arch: dict[str, Any], *, field: str) -> None:
    for key, value in arch.items():
        if state.get(key) != value:
            raise InvalidArgument(
                f"{field} holds a state with {key}={state.get(key)!r}, but this job has {key}={value!r}",
                details={"field": field},
            )
    try:
        network.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise InvalidArgument(
            f"{field} does not fit this model's layers (hidden sizes, channels): {exc}",
            details={"field": field},
        ) from None


@torch.no_grad()
def _evaluate(network: Network, data: TrainingData, device: torch.device) -> dict[str, float]:
    """Validation loss (the training loss' definition) and the task's metrics."""
    network.eval()
    outs = [
        network(torch.from_numpy(data.x_val[i : i + _EVAL_BATCH]).to(device))
        for i in range(0, len(data.x_val), _EVAL_BATCH)
    ]
    out = torch.cat(outs)
    y = torch.from_numpy(data.y_val).to(device)
    if data.task == "classification":
        loss = float(F.cross_entropy(out, y))
        probabilities = torch.softmax(out, dim=1).cpu().numpy()
        return {"loss": loss, **classification_metrics(data.y_val, probabilities)}
    loss = float(_mse(out, (y - network.y_mean) / network.y_scale))
    predictions = (out * network.y_scale + network.y_mean).squeeze(1).cpu().numpy()
    return {"loss": loss, **regression_metrics(data.y_val, predictions)}
