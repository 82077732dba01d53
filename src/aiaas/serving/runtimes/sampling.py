"""Choosing the next token of each sequence in a batch, each with its own sampling settings.

Every sequence carries its own settings and, when it has a ``seed``, its own
``torch.Generator``: the tokens it draws depend on its seed and its logits only, never on
which other requests happen to share the batch. Temperature 0 is greedy (argmax).
The order of operations follows what OpenAI-compatible servers do: penalties on the raw
logits, then temperature, then top-k, then top-p, then a draw.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Sampler", "SamplingParams"]


@dataclass(frozen=True)
class SamplingParams:
    """How one request picks its tokens (already validated by the front)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @classmethod
    def of(cls, request: dict[str, Any]) -> SamplingParams:
        top_k = request.get("top_k")
        temperature, top_p = request.get("temperature"), request.get("top_p")
        return cls(
            temperature=1.0 if temperature is None else float(temperature),
            top_p=1.0 if top_p is None else float(top_p),
            top_k=int(top_k) if top_k is not None and top_k > 0 else 0,
            seed=request.get("seed"),
            presence_penalty=float(request.get("presence_penalty") or 0.0),
            frequency_penalty=float(request.get("frequency_penalty") or 0.0),
        )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class Sampler:
    """The token-choosing state of one sequence: its settings, generator and token counts."""

    def __init__(self, params: SamplingParams, device: torch.device) -> None:
        self.params = params
        self.generator: torch.Generator | None = None
        if not params.greedy:
            self.generator = torch.Generator(device=device)
            seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
            self.generator.manual_seed(seed)
        self.counts: dict[int, int] = {}
        #: Greedy with no penalties: the token is the row's argmax, which the engine takes
        #: for the whole batch at once (:meth:`take`) instead of row by row.
        self.plain_greedy = params.greedy and not (params.presence_penalty or params.frequency_penalty)

    def take(self, token: int) -> int:
        """Record ``token`` (chosen outside, by a batch-wide argmax) as this sequence's next."""
        self.counts[token] = self.counts.get(token, 0) + 1
        return token

    def choose(self, logits: torch.Tensor) -> int:
        """The next token, given this sequence's logits (1-D, float32)."""
        p = self.params
        if self.counts and (p.presence_penalty or p.frequency_penalty):
            ids = torch.tensor(list(self.counts), device=logits.device)
            counts = torch.tensor(list(self.counts.values()), dtype=logits.dtype, device=logits.device)
            logits = logits.clone()
            logits[ids] -= p.presence_penalty + p.frequency_penalty * counts
        if p.greedy:
            token = int(torch.argmax(logits))
        else:
            logits = logits / p.temperature
            if p.top_k and p.top_k < logits.shape[-1]:
                kth = torch.topk(logits, p.top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            if p.top_p < 1.0:
                ordered, order = torch.sort(logits, descending=True)
                cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
                # Drop a token once the ones before it already reach top_p (the first always stays).
                drop = cumulative - torch.softmax(ordered, dim=-1) >= p.top_p
                logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
            probs = torch.softmax(logits, dim=-1)
            token = int(torch.multinomial(probs, 1, generator=self.generator))
        self.counts[token] = self.counts.get(token, 0) + 1
        return token
