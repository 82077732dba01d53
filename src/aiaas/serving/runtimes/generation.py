"""The causal language model runtime: tokenizing, checking limits, and the batching engine.

It answers GENERATE frames with CHUNK frames as text is generated and one FINISH (or an
ERROR naming the request field at fault: the prompt is too long for the context, or
``max_tokens`` does not fit), and CANCEL frames by dropping the request from the batch.
Requests are only tokenized and queued when their frame arrives; the work happens in
:meth:`GenerationRuntime.step`, one decoding step of the whole batch at a time.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from . import device as _device
from .engine import Engine, Event, Sequence
from .sampling import Sampler, SamplingParams
from .text import TextStream

if __package__ == "runtimes":  # in a replica process: the sibling module
    import ipc  # type: ignore[import-not-found]
else:
    from aiaas.serving import ipc

__all__ = ["GenerationRuntime", "load"]


class RequestError(Exception):
    """A request the model cannot run; ``param`` names the field at fault."""

    def __init__(self, message: str, param: str | None, code: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def error_frame(request_id: int, code: str, message: str, param: str | None) -> bytes:
    """An ERROR frame whose message is JSON, so the front can say which field is at fault."""
    body = orjson.dumps({"message": message, "param": param}).decode()
    return ipc.encode_error(request_id, code, body)  # type: ignore[no-any-return]


class GenerationRuntime:
    """A causal LM, its tokenizer and its :class:`~.engine.Engine`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        _device.quiet_offline()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device, dtype = _device.pick(str(spec.get("device", "auto")))
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        path = str(spec["path"])
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        self.model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, trust_remote_code=False, use_safetensors=True, dtype=dtype
        )
        self.model.to(self.device).eval()
        config = self.model.config
        context = next(
            (
                getattr(config, key)
                for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len")
                if isinstance(getattr(config, key, None), int)
            ),
            None,
        )
        self.context_length = int(spec.get("max_context_length") or context or 2048)
        if context is not None:
            self.context_length = min(self.context_length, int(context))
        self.max_batch_size = int(spec.get("max_batch_size") or 32)
        eos: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            eos.update(value if isinstance(value, list) else [value] if isinstance(value, int) else [])
        self.engine = Engine(
            self.model,
            eos_token_ids=eos,
            max_batch_size=self.max_batch_size,
            context_length=self.context_length,
            device=self.device,
        )
        self.info: dict[str, Any] = {
            "task": "text-generation",
            "context_length": self.context_length,
            "max_batch_size": self.max_batch_size,
            "chat_template": bool(getattr(self.tokenizer, "chat_template", None)),
            "device": str(self.device),
            "dtype": str(dtype).removeprefix("torch."),
            "memory_bytes": _device.memory_bytes(self.model),
        }
        self.started_at: dict[int, float] = {}

    # -- frames --------------------------------------------------------------------------

    def handle(self, kind: int, request_id: int, body: memoryview) -> list[bytes]:
        if kind == ipc.GENERATE:
            try:
                self.engine.add(self._sequence(request_id, orjson.loads(bytes(body))))
            except RequestError as exc:
                return [error_frame(request_id, exc.code, exc.message, exc.param)]
            return []
        if kind == ipc.CANCEL:
            event = self.engine.cancel(request_id)
            return [] if event is None else [self._frame(event)]
        if kind == ipc.RUN:
            return [
                error_frame(
                    request_id,
                    "INVALID_ARGUMENT",
                    "this deployment is a language model: use the OpenAI API "
                    "(POST /openai/v1/completions or /openai/v1/chat/completions)",
                    None,
                )
            ]
        return [ipc.encode_error(request_id, "INTERNAL", f"unknown frame kind {kind}")]

    def busy(self) -> bool:
        return self.engine.busy()

    def step(self) -> list[bytes]:
        try:
            events = self.engine.step()
        except Exception as exc:  # a failed step must not end the replica: fail its requests
            message = f"generation failed: {type(exc).__name__}: {exc}"
            return [error_frame(s.request_id, "INTERNAL", message, None) for s in self.engine.reset()]
        return [self._frame(e) for e in events if e.text or e.first or e.finish_reason]

    def _frame(self, event: Event) -> bytes:
        if event.finish_reason is None:
            body = {"text": event.text, "tokens": event.tokens, "prompt_tokens": event.prompt_tokens}
            return ipc.encode_frame(ipc.CHUNK, event.request_id, orjson.dumps(body))  # type: ignore[no-any-return]
        usage = {
            "prompt_tokens": event.prompt_tokens,
            "completion_tokens": event.tokens,
            "total_tokens": event.prompt_tokens + event.tokens,
        }
        body = {"text": event.text, "finish_reason": event.finish_reason, "usage": usage}
        return ipc.encode_frame(ipc.FINISH, event.request_id, orjson.dumps(body))  # type: ignore[no-any-return]

    # -- requests ------------------------------------------------------------------------

    def _sequence(self, request_id: int, request: dict[str, Any]) -> Sequence:
        field = "messages" if request.get("messages") is not None else "prompt"
        ids = self._prompt_ids(request, field)
        if not ids:
            raise RequestError(f"{field} is empty: it must give the model at least one token", field)
        limit = self.context_length
        if len(ids) >= limit:
            raise RequestError(
                f"This model's maximum context length is {limit} tokens, but the {field} has "
                f"{len(ids)} tokens; shorten it to leave room for at least one generated token",
                field,
            )
        max_tokens = request.get("max_tokens")
        if max_tokens is None:
            max_tokens = limit - len(ids)
        if len(ids) + max_tokens > limit:
            raise RequestError(
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{len(ids) + max_tokens} tokens ({len(ids)} in the {field}, {max_tokens} for the "
                f"completion); lower max_tokens to at most {limit - len(ids)}",
                "max_tokens",
            )
        return Sequence(
            request_id=request_id,
            prompt_ids=ids,
            max_tokens=int(max_tokens),
            sampler=Sampler(SamplingParams.of(request), self.device),
            text=TextStream(self.tokenizer, list(request.get("stop") or [])),
            ignore_eos=bool(request.get("ignore_eos", False)),
            arrived_at=time.monotonic(),
        )

    def _prompt_ids(self, request: dict[str, Any], field: str) -> list[int]:
        if field == "messages":
            if not getattr(self.tokenizer, "chat_template", None):
                raise RequestError(
                    "this model has no chat template (its tokenizer_config.json or chat_template.jinja "
                    "gives none), so it cannot take messages; use /openai/v1/completions with a prompt",
                    "messages",
                )
            try:
                text = self.tokenizer.apply_chat_template(
                    request["messages"], tokenize=False, add_generation_prompt=True
                )
            except Exception as exc:  # jinja errors, raise_exception() in a template
                raise RequestError(f"the chat template refused these messages: {exc}", "messages") from None
            ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False)
            return ids
        prompt = request.get("prompt")
        if isinstance(prompt, list):  # token ids
            vocabulary = int(self.model.config.vocab_size)
            bad = [t for t in prompt if not isinstance(t, int) or not 0 <= t < vocabulary]
            if bad:
                raise RequestError(f"prompt token ids must lie in [0, {vocabulary}); got {bad[:5]}", "prompt")
            return [int(t) for t in prompt]
        ids = self.tokenizer.encode(str(prompt))
        return ids


def load(spec: dict[str, Any]) -> GenerationRuntime:
    """The runtime for ``spec`` (``path``, ``device``, ``max_batch_size``, ``threads``)."""
    return GenerationRuntime(spec)
