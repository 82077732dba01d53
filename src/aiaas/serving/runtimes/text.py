"""Generated token ids → text, a piece at a time, stopping at stop strings.

Decoding a token on its own is wrong for byte-level tokenizers (one character may span
tokens, and a lone piece decodes to U+FFFD), and decoding everything again at each step
costs quadratic time. This keeps two offsets into the token list, as text-generation-inference
does: the text of ``ids[prefix:read]`` is known, so the new text is what ``ids[prefix:]``
decodes to beyond it, emitted only once it no longer ends in a half character.

Stop strings are handled on the text: a piece that might be the start of a stop string
is held back until it is known not to be, so a streamed response never shows text past
a stop, and the streamed pieces always add up to the non-streamed text.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TextStream"]


class TextStream:
    """The text of one sequence's generated tokens, released piece by piece."""

    def __init__(self, tokenizer: Any, stop: list[str]) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self._hold = max((len(s) for s in self.stop), default=1) - 1
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0
        self.text = ""  # decoded so far (before any stop), released or held
        self.released = 0  # characters of self.text already handed out
        self.stopped = False

    def _decode(self, ids: list[int]) -> str:
        text: str = self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return text

    def add(self, token: int) -> str:
        """Add one token; the text that may be released now (often empty)."""
        self.ids.append(token)
        known = self._decode(self.ids[self._prefix : self._read])
        new = self._decode(self.ids[self._prefix :])
        if len(new) > len(known) and not new.endswith("\ufffd"):
            self.text += new[len(known) :]
            self._prefix, self._read = self._read, len(self.ids)
        return self._release(final=False)

    def finish(self) -> str:
        """The text still held back, now that no token follows."""
        if not self.stopped and self._read < len(self.ids):
            known = self._decode(self.ids[self._prefix : self._read])
            new = self._decode(self.ids[self._prefix :])
            self.text += new[len(known) :]
            self._read = len(self.ids)
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        if self.stopped:
            return ""
        for stop in self.stop:
            at = self.text.find(stop, max(0, self.released - len(stop) + 1))
            if at != -1:
                self.text = self.text[:at]
                self.stopped = True
                final = True
        end = len(self.text) if final else max(self.released, len(self.text) - self._hold)
        piece = self.text[self.released : end]
        self.released = end
        return piece
