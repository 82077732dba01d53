"""Each optimizer and learning-rate schedule takes the step its formula says.

One tiny parameter, gradients set by hand, and the expected values computed here from the
published update rules (not by another torch optimizer): a factory that built the wrong
optimizer, or the right one with a wrong default, moves the parameter somewhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch

from aiaas.schemas.training import OptimizerSpec, ScheduleSpec
from aiaas.training.optim import build_optimizer, build_scheduler

W0 = (1.0, -2.0)
#: Two steps' gradients, of different sizes and signs, so that rules that scale, normalise or
#: accumulate the gradient all end up in different places.
GRADS = ((0.5, 3.0), (-2.0, 0.25))

# PyTorch's Adam/AdamW defaults, which the factory keeps.
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def _run(spec: OptimizerSpec, grads: Sequence[Sequence[float]]) -> list[list[float]]:
    """The parameter after each step, the gradient of each step set by hand."""
    p = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    optimizer = build_optimizer(spec, [p])
    seen = []
    for g in grads:
        optimizer.zero_grad()
        p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        seen.append(p.detach().tolist())
    return seen


def _close(got: list[list[float]], want: list[list[float]]) -> None:
    assert len(got) == len(want)
    for step, (g, w) in enumerate(zip(got, want, strict=True), start=1):
        assert g == pytest.approx(w, rel=1e-12, abs=1e-12), f"step {step}"


def _adam(lr: float, weight_decay: float, *, decoupled: bool) -> list[list[float]]:
    """Adam (L2 added to the gradient) or AdamW (weights shrunk by lr * weight_decay first)."""
    w, m, v, seen = list(W0), [0.0, 0.0], [0.0, 0.0], []
    for t, grad in enumerate(GRADS, start=1):
        for i, g in enumerate(grad):
            if decoupled:
                w[i] *= 1 - lr * weight_decay
            else:
                g += weight_decay * w[i]
            m[i] = BETA1 * m[i] + (1 - BETA1) * g
            v[i] = BETA2 * v[i] + (1 - BETA2) * g * g
            m_hat, v_hat = m[i] / (1 - BETA1**t), v[i] / (1 - BETA2**t)
            w[i] -= lr * m_hat / (math.sqrt(v_hat) + EPS)
        seen.append(list(w))
    return seen


def test_sgd_steps_against_the_gradient_plus_l2() -> None:
    lr, wd = 0.1, 0.01
    w, want = list(W0), []
    for grad in GRADS:
        w = [wi - lr * (g + wd * wi) for wi, g in zip(w, grad, strict=True)]
        want.append(list(w))
    _close(_run(OptimizerSpec(name="sgd", lr=lr, weight_decay=wd), GRADS), want)


@pytest.mark.parametrize(("momentum", "expected_mu"), [(0.8, 0.8), (None, 0.9)])
def test_momentum_accumulates_a_velocity(momentum: float | None, expected_mu: float) -> None:
    lr = 0.1
    w, velocity, want = list(W0), [0.0, 0.0], []
    for step, grad in enumerate(GRADS):
        # PyTorch's heavy ball: the first velocity is the gradient itself (no dampening).
        velocity = (
            list(grad) if step == 0 else [expected_mu * b + g for b, g in zip(velocity, grad, strict=True)]
        )
        w = [wi - lr * b for wi, b in zip(w, velocity, strict=True)]
        want.append(list(w))
    spec = OptimizerSpec(name="momentum", lr=lr, momentum=momentum)
    _close(_run(spec, GRADS), want)


def test_adam_normalises_the_gradient_with_bias_corrected_moments() -> None:
    spec = OptimizerSpec(name="adam", lr=0.1, weight_decay=0.05)
    _close(_run(spec, GRADS), _adam(0.1, 0.05, decoupled=False))


def test_adamw_decays_the_weights_apart_from_the_gradient() -> None:
    spec = OptimizerSpec(name="adamw", lr=0.1, weight_decay=0.05)
    _close(_run(spec, GRADS), _adam(0.1, 0.05, decoupled=True))
    # And that is a different place from Adam's coupled L2: the two are not interchangeable.
    coupled, decoupled = _adam(0.1, 0.05, decoupled=False), _adam(0.1, 0.05, decoupled=True)
    assert max(abs(a - b) for a, b in zip(coupled[-1], decoupled[-1], strict=True)) > 1e-3


# -- schedules: SGD with a constant gradient, so each epoch moves the weight by its lr -------------

LR = 0.4
GRAD = 1.5


def _schedule_run(schedule: ScheduleSpec | None, epochs: int) -> tuple[list[float], list[float]]:
    """The weight after each epoch's step, and the lr the optimizer holds after each epoch."""
    p = torch.nn.Parameter(torch.tensor([0.0], dtype=torch.float64))
    optimizer = build_optimizer(OptimizerSpec(name="sgd", lr=LR), [p])
    scheduler = build_scheduler(schedule, optimizer, epochs)
    weights, lrs = [], []
    for _ in range(epochs):
        optimizer.zero_grad()
        p.grad = torch.tensor([GRAD], dtype=torch.float64)
        optimizer.step()
        scheduler.step()  # once per epoch, as the trainer does
        weights.append(float(p.item()))
        lrs.append(float(optimizer.param_groups[0]["lr"]))
    return weights, lrs


def _expected(rates: list[float]) -> list[float]:
    """Weights after each epoch when epoch e steps with rates[e]."""
    w, out = 0.0, []
    for rate in rates:
        w -= rate * GRAD
        out.append(w)
    return out


EPOCHS = 6
SCHEDULES: list[tuple[ScheduleSpec | None, list[float]]] = [
    (None, [LR] * (EPOCHS + 1)),
    (ScheduleSpec(name="constant"), [LR] * (EPOCHS + 1)),
    # StepLR: lr * gamma ** (epoch // step_size).
    (ScheduleSpec(name="step", step_size=2, gamma=0.3), [LR * 0.3 ** (e // 2) for e in range(EPOCHS + 1)]),
    # Defaults: halves every max(1, epochs // 3) = 2 epochs.
    (ScheduleSpec(name="step"), [LR * 0.5 ** (e // 2) for e in range(EPOCHS + 1)]),
    # Cosine annealing to 0 over the job's epochs: lr * (1 + cos(pi * e / epochs)) / 2.
    (
        ScheduleSpec(name="cosine"),
        [LR * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS + 1)],
    ),
    (ScheduleSpec(name="exponential", gamma=0.7), [LR * 0.7**e for e in range(EPOCHS + 1)]),
    (ScheduleSpec(name="exponential"), [LR * 0.95**e for e in range(EPOCHS + 1)]),  # default gamma
]


@pytest.mark.parametrize(
    ("schedule", "rates"),
    SCHEDULES,
    ids=["none", "constant", "step", "step-defaults", "cosine", "exponential", "exponential-default"],
)
def test_each_schedule_steps_with_the_rate_of_its_formula(
    schedule: ScheduleSpec | None, rates: list[float]
) -> None:
    weights, lrs = _schedule_run(schedule, EPOCHS)
    assert weights == pytest.approx(_expected(rates[:EPOCHS]), rel=1e-12, abs=1e-12)
    assert lrs == pytest.approx(rates[1:], rel=1e-12, abs=1e-12)
