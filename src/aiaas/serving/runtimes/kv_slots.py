"""The running batch's KV cache: preallocated buffers written in place, one row per sequence.

``transformers``' ``DynamicCache`` grows by ``torch.cat`` at every step, copying every
layer's whole cache each time, and a batch built from it must be re-padded and re-indexed
whenever a request joins or leaves. Here each layer owns two buffers
``[rows, heads, columns, head_dim]`` (keys and values), allocated ahead and grown
geometrically, so that a decoding step writes one column in place and hands the attention
a view:

- **Rows** are sequences (slots ``0 .. rows-1``). A joining sequence takes the next row;
  a leaving one is replaced by the last row (one row copied), so rows stay contiguous.
- **Columns** are positions in a window ``[start, end)`` shared by all rows. Every row writes
  its new token at column ``end``; a row's tokens are contiguous and end there, and the
  columns before them are padding, hidden by the attention mask (positions come from each
  row's own count, so padding never shifts them). A joining prompt is copied so that it ends
  at ``end`` too; one longer than the window widens it to the left.
- When every row has padding at the window's left edge (its longest sequence left), the
  window just starts later: nothing moves. When it reaches the buffers' right edge, it is
  moved back to the left (or the buffers doubled when it fills more than half of them).

Masked columns always hold finite numbers (zeros, or keys of an earlier row), so that the
attention's zero weights on them stay zeros.

This is the layout of vLLM's slots with contiguous rows instead of pages; it needs a cache
of plain full-attention layers (:func:`plain_layers`).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

__all__ = ["SlotCache", "plain_layers"]

#: Columns of a first allocation at least; buffers then double.
_MIN_COLUMNS = 64


class _SlotLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    """One layer's buffers; ``keys``/``values`` are views of the window, as ``DynamicLayer``'s
    tensors are for the code that reads them (its length is the model's mask size)."""

    def __init__(self, owner: SlotCache) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.owner = owner
        self.key_buffer = torch.empty(0)
        self.value_buffer = torch.empty(0)
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the step's keys and values at column ``end`` of every row; the window's views."""
        rows, start, end = self.owner.rows, self.owner.start, self.owner.end
        width = key_states.shape[-2]
        self.key_buffer[:rows, :, end : end + width] = key_states
        self.value_buffer[:rows, :, end : end + width] = value_states
        self.keys = self.key_buffer[:rows, :, start : end + width]
        self.values = self.value_buffer[:rows, :, start : end + width]
        return self.keys, self.values

    def view(self) -> None:
        owner = self.owner
        self.keys = self.key_buffer[: owner.rows, :, owner.start : owner.end]
        self.values = self.value_buffer[: owner.rows, :, owner.start : owner.end]


class SlotCache(DynamicCache):
    """The batch's cache, passed to the model as its ``past_key_values`` for decoding steps.

    Args:
        layers: the model's layer count (from a prefill's cache).
        max_rows: rows at most (the engine's batch size).
    """

    def __init__(self, layers: int, max_rows: int) -> None:
        Cache.__init__(self, layers=[_SlotLayer(self) for _ in range(layers)])
        self.max_rows = max_rows
        self.rows = 0
        self.start = 0
        self.end = 0
        #: Which columns of each row hold its tokens (1) or padding (0), ``[rows, columns]``.
        self.mask = torch.zeros(0, 0, dtype=torch.long)

    @property
    def width(self) -> int:
        return self.end - self.start

    @property
    def slot_layers(self) -> list[_SlotLayer]:
        return self.layers  # type: ignore[return-value]

    # -- rows joining and leaving ----------------------------------------------------------

    @torch.inference_mode()
    def append(self, prefilled: Any, mask: torch.Tensor) -> None:
        """Add the rows of a prefill: its ``DynamicCache`` and its ``[rows, length]`` padding mask."""
        count, length = mask.shape
        first = prefilled.layers[0].keys
        if self.rows == 0:
            self.start = self.end = 0
        extend = max(0, length - self.width)  # a prompt longer than the window widens it
        self._reserve(self.rows + count, left=extend, right=1, like=first)
        end = self.end
        if extend:
            self.start -= extend
            self.mask[: self.rows, self.start : self.start + extend] = 0
        rows = slice(self.rows, self.rows + count)
        self.mask[rows, self.start : end - length] = 0
        self.mask[rows, end - length : end] = mask
        for layer, theirs in zip(self.slot_layers, prefilled.layers, strict=True):
            layer.key_buffer[rows, :, end - length : end] = theirs.keys
            layer.value_buffer[rows, :, end - length : end] = theirs.values
        self.rows += count

    @torch.inference_mode()
    def remove(self, dead: list[int]) -> list[int]:
        """Drop the rows ``dead``; the new order of the rows that stay (``order[new] = old``).

        Rows past the new end move into the holes left below it, so the rows stay
        contiguous; columns that became padding in every row are left out of the window.
        """
        gone = set(dead)
        rows = self.rows - len(gone)
        order = list(range(rows))
        holes = [i for i in range(rows) if i in gone]
        movers = [i for i in range(rows, self.rows) if i not in gone]
        if holes:
            into = torch.tensor(holes, device=self.mask.device)
            source = torch.tensor(movers, device=self.mask.device)
            window = slice(self.start, self.end)
            for layer in self.slot_layers:
                for buffer in (layer.key_buffer, layer.value_buffer):
                    part = buffer[:, :, window]
                    part.index_copy_(0, into, part.index_select(0, source))
            part = self.mask[:, window]
            part.index_copy_(0, into, part.index_select(0, source))
            for hole, mover in zip(holes, movers, strict=True):
                order[hole] = mover
        self.rows = rows
        if rows == 0:
            self.start = self.end = 0
        else:
            used = self.mask[:rows, self.start : self.end].any(dim=0)
            self.start += int(used.nonzero()[0].item())
        return order

    # -- one decoding step -----------------------------------------------------------------

    @torch.inference_mode()
    def next_mask(self) -> torch.Tensor:
        """Make room for one more column and show the layers the window; the attention mask
        of the step (``[rows, width + 1]``)."""
        self._reserve(self.rows, left=0, right=1, like=self.slot_layers[0].key_buffer)
        self.mask[: self.rows, self.end] = 1
        for layer in self.slot_layers:
            layer.view()
        return self.mask[: self.rows, self.start : self.end + 1]

    def advance(self) -> None:
        """The step's column is written: it joins the window."""
        self.end += 1

    # -- room ------------------------------------------------------------------------------

    def _reserve(self, rows: int, *, left: int, right: int, like: torch.Tensor) -> None:
        """Make the buffers hold ``rows`` rows, ``left`` free columns before the window and
        ``right`` after it, moving the window or growing the buffers when they do not."""
        buffer = self.slot_layers[0].key_buffer
        have_rows, columns = (buffer.shape[0], buffer.shape[2]) if buffer.dim() == 4 else (0, 0)
        if rows <= have_rows and self.start >= left and self.end + right <= columns:
            return
        needed = left + self.width + right
        if rows > have_rows or needed > columns // 2 or buffer.dtype != like.dtype:
            new_rows = min(self.max_rows, max(rows, 2 * have_rows, 4))
            new_columns = max(_MIN_COLUMNS, 2 * needed, columns)
            self._reallocate(new_rows, new_columns, like, start=left)
        else:
            self._move(start=left)

    def _reallocate(self, rows: int, columns: int, like: torch.Tensor, *, start: int) -> None:
        """New zeroed buffers, the window copied to begin at column ``start``."""
        width, old = self.width, slice(self.start, self.end)
        new = slice(start, start + width)
        heads, head_dim = like.shape[1], like.shape[3]
        for layer in self.slot_layers:
            for name in ("key_buffer", "value_buffer"):
                buffer = torch.zeros(rows, heads, columns, head_dim, dtype=like.dtype, device=like.device)
                if width and self.rows:
                    buffer[: self.rows, :, new] = getattr(layer, name)[: self.rows, :, old]
                setattr(layer, name, buffer)
        mask = torch.zeros(rows, columns, dtype=torch.long, device=like.device)
        if width and self.rows:
            mask[: self.rows, new] = self.mask[: self.rows, old]
        self.mask = mask
        self.start, self.end = start, start + width

    def _move(self, *, start: int) -> None:
        """Move the window to begin at column ``start`` (left of where it is: room to grow)."""
        width, old = self.width, slice(self.start, self.end)
        new = slice(start, start + width)
        if width and self.rows:
            for layer in self.slot_layers:
                for buffer in (layer.key_buffer, layer.value_buffer):
                    buffer[: self.rows, :, new] = buffer[: self.rows, :, old].clone()
            self.mask[: self.rows, new] = self.mask[: self.rows, old].clone()
        self.start, self.end = start, start + width


def plain_layers(cache: Any) -> bool:
    """True when every layer of the cache is a plain full-attention ``DynamicLayer``."""
    layers = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
