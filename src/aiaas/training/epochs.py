"""The bookkeeping around the epochs of a PyTorch run, shared by every epoch-by-epoch trainer.

The MLP/CNN loop (:mod:`aiaas.training.torch_trainer`) and the language model's
(:mod:`aiaas.training.language_model`) differ in what one step computes; what happens around
the steps is one definition, here: resuming from a checkpoint, early stopping and the best
weights, the history, reporting and checkpointing (rank 0 only), restoring the best epoch, the
check that every rank ended with the same parameters, and the run's facts in ``params``.

A checkpoint's shared part (:meth:`EpochBook.state`) captures every RNG state at the moment it
is taken, which is what makes a resumed run repeat an uninterrupted one exactly.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from aiaas.schemas.training import EarlyStoppingSpec, JobSpec
from aiaas.training.checkpoint import capture_rng, restore_rng
from aiaas.training.group import Group
from aiaas.training.reporter import Reporter

__all__ = ["EarlyStopping", "EpochBook", "rank_digests", "seed_all"]


def seed_all(seed: int) -> None:
    """Seed torch, numpy and Python alike before a model is built: initialisation and dropout
    then depend on the seed only, on every rank."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


class EarlyStopping:
    """Counts epochs without improvement of the spec's metric; knows the best epoch."""

    def __init__(self, spec: EarlyStoppingSpec | None) -> None:
        self.spec = spec
        self.mode = spec.effective_mode() if spec is not None else "min"
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.stopped = False

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record an epoch; True when it is the best so far."""
        if self.spec is None:
            return False
        value = metrics.get(self.spec.metric, math.nan)
        delta = self.spec.min_delta
        better = value < self.best - delta if self.mode == "min" else value > self.best + delta
        if better and not math.isnan(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        self.stopped = self.bad_epochs >= self.spec.patience
        return False

    def state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped = bool(state["stopped"])


class EpochBook:
    """What a run keeps from epoch to epoch, and what it does at each epoch's end.

    Args:
        spec: the job spec (epochs, early stopping, and the facts recorded in ``params``).
        model: the module whose weights are checkpointed and restored (not its DDP wrapper).
        optimizer, scheduler: checkpointed with it.
        reporter: told of each epoch by rank 0.
        group: this process' place in the run.
    """

    def __init__(
        self,
        spec: JobSpec,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        reporter: Reporter,
        group: Group,
    ) -> None:
        self.spec, self.model, self.optimizer, self.scheduler = spec, model, optimizer, scheduler
        self.reporter, self.group = reporter, group
        self.stopping = EarlyStopping(spec.early_stopping)
        self.restore_best = spec.early_stopping is not None and spec.early_stopping.restore_best
        self.history: list[dict[str, float]] = []
        self.best_weights: dict[str, torch.Tensor] = {}
        self.start = 0

    def resume(self, state: dict[str, Any]) -> None:
        """Continue after the checkpoint ``state`` (the model's weights are loaded by the caller,
        which checks they fit)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stopping.load(state["early_stopping"])
        self.history = [dict(h) for h in state["history"]]
        self.best_weights = dict(state["best_model"])
        self.start = int(state["epoch"])
        restore_rng(state["rng"])
        self.reporter.log(f"resumed after epoch {self.start}")

    def epochs(self) -> range:
        """The epochs left to run (1-based)."""
        return range(self.start + 1, self.spec.epochs + 1)

    @property
    def stopped(self) -> bool:
        return self.stopping.stopped

    def state(self, epoch: int) -> dict[str, Any]:
        """The checkpoint's shared part after ``epoch``; the trainer adds what rebuilds its model."""
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.stopping.state(),
            "best_model": self.best_weights,
            "history": self.history,
            "rng": capture_rng(),
        }

    def end_epoch(
        self, epoch: int, metrics: dict[str, float], began: float, snapshot: Callable[[int], bytes]
    ) -> bool:
        """Record a finished epoch: early stopping and the best weights, ``epoch_s``, the
        history, then (rank 0) the report and the checkpoint ``snapshot(epoch)``.

        Returns:
            True when early stopping ends the run here.
        """
        if self.stopping.update(epoch, metrics) and self.restore_best:
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        metrics["epoch_s"] = time.perf_counter() - began
        self.history.append(metrics)
        if self.group.rank == 0:
            self.reporter.epoch(epoch, metrics)
            self.reporter.checkpoint(epoch, snapshot(epoch))
        if self.stopping.stopped:
            metric = self.stopping.spec.metric if self.stopping.spec else ""
            self.reporter.log(
                f"early stopping after epoch {epoch}: {metric} best at epoch {self.stopping.best_epoch}"
            )
        return self.stopping.stopped

    def finish(self) -> list[str]:
        """Put back the best epoch's weights (``restore_best``) and check that every rank holds
        the same parameters; returns their digests, one per rank.

        Raises:
            RuntimeError: the ranks diverged (a bug: they must never).
        """
        if self.best_weights and self.restore_best:
            self.model.load_state_dict(self.best_weights)
            self.reporter.log(f"restored the weights of epoch {self.stopping.best_epoch}")
        digests = rank_digests(self.model, self.group)
        if len(set(digests)) != 1:
            raise RuntimeError(f"data-parallel ranks ended with different parameters: {digests}")
        return digests

    def params(self, digests: list[str]) -> dict[str, Any]:
        """The run's facts every PyTorch family records in its version's ``params``."""
        spec = self.spec
        return {
            "optimizer": spec.optimizer.model_dump(),
            "schedule": spec.schedule.model_dump() if spec.schedule else {"name": "constant"},
            "epochs": spec.epochs,
            "epochs_run": len(self.history),
            "best_epoch": self.stopping.best_epoch or len(self.history),
            "batch_size": spec.batch_size,
            "seed": spec.seed,
            "workers": self.group.world_size,
            "parameter_digests": digests,
        }


def rank_digests(network: torch.nn.Module, group: Group) -> list[str]:
    """SHA-256 of this rank's parameters and buffers, gathered from every rank (rank order)."""
    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    mine = digest.hexdigest()
    if not group.distributed:
        return [mine]
    # Gather the first 8 bytes of each digest: enough to tell ranks apart.
    local = torch.tensor([int(mine[:15], 16)], dtype=torch.int64, device=group.device)
    gathered = [torch.zeros_like(local) for _ in range(group.world_size)]
    torch.distributed.all_gather(gathered, local)
    return [format(int(t.item()), "015x") for t in gathered]
