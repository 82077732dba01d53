"""Optimisers and learning-rate schedules from the job spec."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from aiaas.schemas.training import OptimizerSpec, ScheduleSpec

__all__ = ["build_optimizer", "build_scheduler"]


def build_optimizer(spec: OptimizerSpec, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """SGD, SGD with momentum (default 0.9), Adam, or AdamW (decoupled weight decay)."""
    if spec.name == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.name == "momentum":
        momentum = 0.9 if spec.momentum is None else spec.momentum
        return torch.optim.SGD(params, lr=spec.lr, momentum=momentum, weight_decay=spec.weight_decay)
    if spec.name == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)


def build_scheduler(
    spec: ScheduleSpec | None, optimizer: torch.optim.Optimizer, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A schedule stepped once per epoch; 'cosine' anneals to 0 over the job's epochs.

    Defaults: 'step' halves every ``max(1, epochs // 3)`` epochs (gamma 0.5); 'exponential'
    multiplies by 0.95 each epoch. No schedule is 'constant'.
    """
    name = "constant" if spec is None else spec.name
    if name == "step":
        assert spec is not None
        step_size = spec.step_size or max(1, epochs // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=spec.gamma or 0.5)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "exponential":
        assert spec is not None
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=spec.gamma or 0.95)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _epoch: 1.0)
