"""Continuous (iteration-level) batching of a causal language model with a KV cache.

Static batching runs a batch until its longest sequence ends: short requests wait for
long ones and new ones wait for the whole batch. Here, as in vLLM and Orca, the unit of
scheduling is one decoding step: between two steps, finished sequences leave the batch
and waiting ones join it, so a request starts as soon as there is a free slot.

How a batch shares one KV cache (:class:`~.kv_slots.SlotCache`: per layer, preallocated
key and value buffers with one row per sequence, written in place):

- Requests that arrived together are *prefilled together*: their prompts run as one
  left-padded batch (a lone request runs alone, with no padding), one forward pass for
  all of them, which keeps the decoding of the running batch from stalling behind one
  prefill per newcomer. Only the last position's logits are computed.
- Their cache is then copied into free rows of the batch's, right-aligned with the other
  rows (left padding), with an attention mask that hides the padding; each row carries its
  own ``position_ids`` (its count of real tokens), so padding never shifts positions.
- A decoding step feeds every row its last token, with the mask and positions; each layer
  writes the new keys and values into one column of its buffers, nothing is concatenated.
- A row that finished (or was cancelled) is replaced by the last row, and columns that
  have become padding in every remaining row leave the cache's window.

Models whose cache is not a plain list of full-attention layers (sliding-window or hybrid
caches) cannot share rows this way; they run one sequence at a time, still scheduled step
by step, with the model's own cache.
"""

from __future__ import annotations

import inspect
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .sampling import Sampler
from .text import TextStream

if TYPE_CHECKING:
    from .kv_slots import SlotCache

__all__ = ["Engine", "Event", "Sequence"]


@dataclass
class Sequence:
    """One request being generated."""

    request_id: int
    prompt_ids: list[int]
    max_tokens: int
    sampler: Sampler
    text: TextStream
    ignore_eos: bool = False
    generated: int = 0
    finish_reason: str | None = None
    pending: int | None = None  # the last token chosen, not yet in the cache
    arrived_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Event:
    """What one step produced for one request: new text, and how it ended if it did."""

    request_id: int
    text: str
    tokens: int
    finish_reason: str | None = None
    prompt_tokens: int = 0
    first: bool = False


class Engine:
    """The scheduler and the batch: requests wait in a queue, run in the batch, leave it.

    Args:
        model: a ``transformers`` causal LM in eval mode.
        eos_token_ids: tokens that end a sequence (unless the request ignores them).
        max_batch_size: sequences decoded together at most; others wait.
        context_length: prompt plus generated tokens may not exceed it.
        device: where the model runs.
    """

    def __init__(
        self,
        model: Any,
        *,
        eos_token_ids: set[int],
        max_batch_size: int,
        context_length: int,
        device: torch.device,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.eos = eos_token_ids
        self.max_batch_size = max_batch_size
        self.context_length = context_length
        self.device = device
        self.clock = clock
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        #: The batch's cache: a :class:`SlotCache` for mergeable models, else the one
        #: running sequence's own cache.
        self._cache: Any = None
        self._mergeable: bool | None = None
        # A prefill needs the last position's logits only (models that take the argument).
        self._keeps_last = "logits_to_keep" in inspect.signature(model.forward).parameters
        #: Prefill passes and decoding steps run, and tokens generated, for stats.
        self.prefills = 0
        self.steps = 0
        self.tokens = 0

    # -- requests ------------------------------------------------------------------------

    def add(self, sequence: Sequence) -> None:
        self.waiting.append(sequence)

    def cancel(self, request_id: int) -> Event | None:
        """Drop a request wherever it is; its final event, or None if it is unknown."""
        for seq in list(self.waiting):
            if seq.request_id == request_id:
                self.waiting.remove(seq)
                return self._final(seq, "cancelled")
        for seq in self.running:
            if seq.request_id == request_id and seq.finish_reason is None:
                seq.finish_reason = "cancelled"
                self._drop_finished()
                return self._final(seq, "cancelled")
        return None

    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    # -- one step ------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self) -> list[Event]:
        """Admit waiting requests into free slots (one prefill for all of them), then decode
        one token for every sequence already in the batch.

        (Returning right after a prefill, so that first tokens leave before the decoding
        step, was tried: TTFT p50 did not move, p90 doubled and throughput fell.)
        """
        events: list[Event] = []
        while self.waiting and len(self.running) < self._capacity():
            room = self._capacity() - len(self.running)
            if not self._mergeable:
                # The first prefill finds out whether caches can be merged; unmergeable
                # ones run one sequence at a time.
                room = 1
            group = [self.waiting.popleft() for _ in range(min(room, len(self.waiting)))]
            events.extend(self._prefill(group))
            self._drop_finished()  # a request may end at its first token
        if self.running:
            events.extend(self._decode())
            self._drop_finished()
        return events

    def _capacity(self) -> int:
        if self._mergeable is False and self.running:
            return 1
        return self.max_batch_size

    def _prefill(self, group: list[Sequence]) -> list[Event]:
        width = max(len(s.prompt_ids) for s in group)
        keep = {"logits_to_keep": 1} if self._keeps_last else {}
        if len(group) == 1:
            ids = torch.tensor([group[0].prompt_ids], device=self.device)
            mask = torch.ones_like(ids)
            out = self.model(input_ids=ids, use_cache=True, **keep)
        else:
            rows = [[0] * (width - len(s.prompt_ids)) + s.prompt_ids for s in group]
            ids = torch.tensor(rows, device=self.device)
            mask = torch.tensor(
                [[0] * (width - len(s.prompt_ids)) + [1] * len(s.prompt_ids) for s in group],
                device=self.device,
            )
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **keep
            )
        self.prefills += 1
        cache = out.past_key_values
        if self._mergeable is None:
            # Imported here: ``transformers`` only once the runtime has set its environment.
            from .kv_slots import plain_layers

            self._mergeable = plain_layers(cache)
        self._join(group, cache, mask)
        return self._advance_all(group, out.logits[:, -1].float(), first=True)

    def _decode(self) -> list[Event]:
        if not self._mergeable:
            return [e for seq in list(self.running) for e in self._decode_alone(seq)]
        cache: SlotCache = self._cache
        mask = cache.next_mask()
        tokens = torch.tensor([[s.pending] for s in self.running], device=self.device)
        positions = torch.tensor([[_cached(s)] for s in self.running], device=self.device)
        out = self.model(
            input_ids=tokens,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
        cache.advance()
        self.steps += 1
        return self._advance_all(self.running, out.logits[:, -1].float())

    def _advance_all(
        self, group: list[Sequence], logits: torch.Tensor, *, first: bool = False
    ) -> list[Event]:
        """Each sequence's next token from its row of ``logits``: the greedy ones from one
        argmax over the whole batch, the others through their own sampler."""
        greedy = [s.sampler.plain_greedy for s in group]
        best = logits.argmax(dim=-1).tolist() if any(greedy) else []
        events = []
        for i, seq in enumerate(group):
            token = seq.sampler.take(best[i]) if greedy[i] else seq.sampler.choose(logits[i])
            events.append(self._advance(seq, token, first=first))
        return events

    def _decode_alone(self, seq: Sequence) -> list[Event]:
        """One step of one sequence with its own cache (models whose caches cannot be merged)."""
        out = self.model(
            input_ids=torch.tensor([[seq.pending]], device=self.device),
            past_key_values=self._cache,
            use_cache=True,
        )
        self._cache = out.past_key_values
        self.steps += 1
        return self._advance_all([seq], out.logits[:, -1].float())

    def _advance(self, seq: Sequence, token: int, *, first: bool = False) -> Event:
        seq.generated += 1
        self.tokens += 1
        seq.pending = token
        text = "" if token in self.eos and not seq.ignore_eos else seq.text.add(token)
        if (token in self.eos and not seq.ignore_eos) or seq.text.stopped:
            seq.finish_reason = "stop"
        elif seq.generated >= seq.max_tokens or len(seq.prompt_ids) + seq.generated >= self.context_length:
            seq.finish_reason = "length"
        prompt_tokens = len(seq.prompt_ids)
        if seq.finish_reason is not None:
            final = self._final(seq, seq.finish_reason)
            return Event(
                seq.request_id, text + final.text, seq.generated, seq.finish_reason, prompt_tokens, first
            )
        return Event(seq.request_id, text, seq.generated, None, prompt_tokens, first)

    def _final(self, seq: Sequence, reason: str) -> Event:
        seq.finish_reason = reason
        return Event(seq.request_id, seq.text.finish(), seq.generated, reason, len(seq.prompt_ids))

    def reset(self) -> list[Sequence]:
        """Drop every request and the cache (after a failed step); the requests dropped."""
        dropped = [*self.waiting, *self.running]
        self.waiting.clear()
        self.running = []
        self._cache = None
        return dropped

    # -- the shared cache ----------------------------------------------------------------

    def _join(self, group: list[Sequence], cache: Any, mask: torch.Tensor) -> None:
        """Add the prefilled ``group`` (its cache and padding ``mask``) to the batch."""
        if not self._mergeable:
            if not self.running:
                self._cache = cache
            self.running.extend(group)
            return
        if self._cache is None:
            from .kv_slots import SlotCache

            self._cache = SlotCache(len(cache.layers), self.max_batch_size)
        self._cache.append(cache, mask)
        self.running.extend(group)

    def _drop_finished(self) -> None:
        dead = [i for i, s in enumerate(self.running) if s.finish_reason is not None]
        if not dead:
            return
        if not self._mergeable:
            # One sequence at a time: the cache is that sequence's.
            self.running = [s for s in self.running if s.finish_reason is None]
            self._cache = None
            if self.running:  # cannot happen with capacity 1, kept for safety
                raise AssertionError("an unmergeable cache held two sequences")
            return
        order = self._cache.remove(dead)
        self.running = [self.running[i] for i in order]


def _cached(seq: Sequence) -> int:
    """The position of a sequence's pending token: how many of its tokens the cache holds."""
    return len(seq.prompt_ids) + seq.generated - 1
