"""The OpenAI API's requests and responses: parsing, checking, and the JSON the clients expect.

Requests are checked field by field before anything runs, and each error names its field
in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``, so the official
client raises its ``BadRequestError`` with ``param`` set. Unknown fields are ignored, as
OpenAI does (clients send fields this server has no use for, such as ``user``); fields
whose meaning it cannot honour (``logprobs``, ``tools``, ``logit_bias``...) are refused
instead of silently ignored.

Extensions beyond OpenAI's fields, as vLLM takes them: ``top_k`` and ``ignore_eos``.
"""

from __future__ import annotations

import base64
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiaas.errors import HTTP_STATUS, AiaasError, InvalidArgument

__all__ = [
    "DEFAULT_COMPLETION_MAX_TOKENS",
    "MAX_CHOICES",
    "MAX_EMBEDDING_INPUTS",
    "MAX_STOP_SEQUENCES",
    "ChatRequest",
    "CompletionRequest",
    "EmbeddingRequest",
    "chat_chunk",
    "chat_response",
    "completion_chunk",
    "completion_response",
    "embedding_response",
    "error_body",
    "parse_chat",
    "parse_completion",
    "parse_embedding",
]

#: ``max_tokens`` of a completion that gives none (OpenAI's default for /completions);
#: a chat completion without one may use the rest of the context, as OpenAI's does.
DEFAULT_COMPLETION_MAX_TOKENS = 16
#: ``n`` times the prompts of one request: sequences one request may start.
MAX_CHOICES = 16
#: ``stop`` sequences one request may give (OpenAI's limit).
MAX_STOP_SEQUENCES = 4
#: Texts one embeddings request may give (OpenAI's limit).
MAX_EMBEDDING_INPUTS = 2048

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
    504: "timeout_error",
}
_UNSUPPORTED = {
    "logprobs": "log probabilities are not returned by this server",
    "top_logprobs": "log probabilities are not returned by this server",
    "echo": "echo is not supported",
    "suffix": "suffix (insertion) is not supported",
    "logit_bias": "logit_bias is not supported",
    "tools": "tool calling is not supported by this server",
    "functions": "function calling is not supported by this server",
    "audio": "audio output is not supported",
}


def error_body(exc: AiaasError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI-shaped body of a platform error."""
    status = HTTP_STATUS.get(exc.code, 500)
    param = exc.details.get("field")
    code = exc.details.get("openai_code") or (exc.code.lower() if status < 500 else None)
    return status, {
        "error": {
            "message": exc.message,
            "type": _TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }


def _invalid(field: str, message: str, value: Any = None) -> InvalidArgument:
    details: dict[str, Any] = {"field": field}
    if value is not None and isinstance(value, str | int | float | bool):
        details["value"] = value
    return InvalidArgument(message, details=details)


# -- common fields ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampling:
    """The generation settings common to completions and chat completions."""

    max_tokens: int | None
    temperature: float
    top_p: float
    top_k: int
    seed: int | None
    stop: tuple[str, ...]
    presence_penalty: float
    frequency_penalty: float
    n: int
    ignore_eos: bool

    def request(self, index: int) -> dict[str, Any]:
        """The fields sent to the runtime for choice ``index`` (a seeded ``n > 1`` request
        gives each choice its own seed, so the choices differ but repeat)."""
        seed = None if self.seed is None else self.seed + index
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "seed": seed,
            "stop": list(self.stop),
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "ignore_eos": self.ignore_eos,
        }


def _number(
    body: Mapping[str, Any], name: str, default: float, low: float, high: float, *, open_low: bool = False
) -> float:
    value = body.get(name)
    if value is None:
        return default
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or value > high or (open_low and value == low):
        bound = f"greater than {low:g}" if open_low else f"at least {low:g}"
        raise _invalid(name, f"{name} must be a number {bound} and at most {high:g}; got {value!r}", value)
    return float(value)


def _integer(body: Mapping[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        upper = f" and at most {high}" if high is not None else ""
        raise _invalid(name, f"{name} must be an integer of at least {low}{upper}; got {value!r}", value)
    return value


def _sampling(
    body: Mapping[str, Any], max_tokens_names: tuple[str, ...], default_max_tokens: int | None
) -> Sampling:
    for name, why in _UNSUPPORTED.items():
        value = body.get(name)
        if value not in (None, False, 0, [], {}):
            raise _invalid(name, f"{name}: {why}; leave it out", value if isinstance(value, str) else None)
    best_of = _integer(body, "best_of", 1)
    if best_of is not None and best_of != 1:
        raise _invalid("best_of", f"best_of must be 1 (server-side best-of is not supported); got {best_of}")
    max_tokens = default_max_tokens
    for name in max_tokens_names:
        given = _integer(body, name, 1)
        if given is not None:
            max_tokens = given
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise _invalid("stop", f"stop must be a string or a list of strings; got {type(stop).__name__}")
    if len(stops) > MAX_STOP_SEQUENCES or any(not s for s in stops):
        raise _invalid(
            "stop", f"stop takes up to {MAX_STOP_SEQUENCES} non-empty strings; got {list(stops)!r}"
        )
    top_k = _integer(body, "top_k", -1)
    if top_k is not None and top_k == 0:
        top_k = -1
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise _invalid("seed", f"seed must be an integer from 0 to 2**63-1; got {seed!r}", seed)
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise _invalid("ignore_eos", f"ignore_eos must be true or false; got {ignore_eos!r}")
    return Sampling(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, open_low=True),
        top_k=max(top_k or -1, 0),
        seed=seed,
        stop=stops,
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        n=_integer(body, "n", 1, MAX_CHOICES) or 1,
        ignore_eos=ignore_eos,
    )


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model", f"model is required: the name of a deployment; got {model!r}")
    return model


def _stream(body: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("stream", f"stream must be true or false; got {stream!r}")
    options = body.get("stream_options") or {}
    if not isinstance(options, Mapping):
        raise _invalid("stream_options", 'stream_options must be an object such as {"include_usage": true}')
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise _invalid("stream_options.include_usage", "stream_options.include_usage must be true or false")
    if options and not stream:
        raise _invalid("stream_options", "stream_options is only allowed when stream is true")
    return stream, include_usage


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise _invalid("body", f"the request body must be a JSON object; got {type(body).__name__}")
    return body


# -- completions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompts: tuple[str | list[int], ...]
    sampling: Sampling
    stream: bool
    include_usage: bool


def parse_completion(raw: Any) -> CompletionRequest:
    """Check a ``/completions`` body.

    Raises:
        InvalidArgument: naming the field (``details["field"]``) that breaks a rule.
    """
    body = _object(raw)
    model = _model(body)
    prompt = body.get("prompt")
    prompts: tuple[str | list[int], ...]
    if isinstance(prompt, str):
        prompts = (prompt,)
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = tuple(prompt)
    elif isinstance(prompt, list) and prompt and all(_is_int(t) for t in prompt):
        prompts = (list(prompt),)
    elif (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(p, list) and p and all(_is_int(t) for t in p) for p in prompt)
    ):
        prompts = tuple(list(p) for p in prompt)
    else:
        raise _invalid(
            "prompt",
            "prompt is required: a string, a list of strings, a list of token ids or a list of such lists",
        )
    sampling = _sampling(body, ("max_tokens",), DEFAULT_COMPLETION_MAX_TOKENS)
    if len(prompts) * sampling.n > MAX_CHOICES:
        raise _invalid(
            "n",
            f"prompts times n may be at most {MAX_CHOICES}; got {len(prompts)} prompts and n={sampling.n}",
        )
    stream, include_usage = _stream(body)
    return CompletionRequest(model, prompts, sampling, stream, include_usage)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- chat completions ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    sampling: Sampling
    stream: bool
    include_usage: bool


_ROLES = ("system", "developer", "user", "assistant")


def parse_chat(raw: Any) -> ChatRequest:
    """Check a ``/chat/completions`` body; message contents are flattened to text.

    Raises:
        InvalidArgument: naming the field (``messages[2].content``, ``temperature``...).
    """
    body = _object(raw)
    model = _model(body)
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise _invalid("messages", "messages is required: a non-empty list of {role, content} objects")
    messages = [_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages)]
    choice = body.get("tool_choice")
    if choice not in (None, "none"):
        raise _invalid("tool_choice", "tool calling is not supported by this server; leave tool_choice out")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, Mapping) or response_format.get("type") != "text"
    ):
        raise _invalid(
            "response_format", 'only {"type": "text"} is supported (no JSON mode or schema-guided output)'
        )
    sampling = _sampling(body, ("max_tokens", "max_completion_tokens"), None)
    stream, include_usage = _stream(body)
    return ChatRequest(model, messages, sampling, stream, include_usage)


def _message(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise _invalid(where, f"{where} must be an object with role and content")
    role = raw.get("role")
    if role not in _ROLES:
        raise _invalid(
            f"{where}.role", f"{where}.role must be one of {', '.join(_ROLES)}; got {role!r}", role
        )
    if raw.get("tool_calls") or raw.get("function_call"):
        raise _invalid(f"{where}.tool_calls", "tool calling is not supported by this server")
    content = raw.get("content")
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if (
                not isinstance(part, Mapping)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise _invalid(
                    f"{where}.content[{j}]", f"{where}.content[{j}] must be a text part {{type: text, text}}"
                )
            texts.append(part["text"])
        content = "".join(texts)
    if not isinstance(content, str):
        raise _invalid(f"{where}.content", f"{where}.content must be a string or a list of text parts")
    return {"role": "system" if role == "developer" else str(role), "content": content}


# -- embeddings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    texts: list[str]
    base64: bool
    dimensions: int | None = field(default=None)


def parse_embedding(raw: Any) -> EmbeddingRequest:
    """Check an ``/embeddings`` body (texts only: token-id inputs are refused).

    Raises:
        InvalidArgument: naming the field.
    """
    body = _object(raw)
    model = _model(body)
    value = body.get("input")
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and value and all(isinstance(t, str) for t in value):
        texts = list(value)
    elif isinstance(value, list) and value and all(_is_int(t) or isinstance(t, list) for t in value):
        raise _invalid("input", "token id inputs are not supported for embeddings: send the texts")
    else:
        raise _invalid("input", "input is required: a non-empty string or list of strings")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise _invalid("input", f"input may hold at most {MAX_EMBEDDING_INPUTS} texts; got {len(texts)}")
    if any(not t for t in texts):
        raise _invalid("input", "input may not hold empty strings")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _invalid(
            "encoding_format", f"encoding_format must be float or base64; got {encoding!r}", encoding
        )
    dimensions = _integer(body, "dimensions", 1)
    return EmbeddingRequest(model, texts, encoding == "base64", dimensions)


# -- responses ---------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def completion_response(
    id_: str, model: str, created: int, choices: list[tuple[str, str]], usage: dict[str, int]
) -> dict[str, Any]:
    """A whole ``text_completion``: ``choices`` are ``(text, finish_reason)`` by index."""
    return {
        "id": id_,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": i, "text": text, "logprobs": None, "finish_reason": reason}
            for i, (text, reason) in enumerate(choices)
        ],
        "usage": usage,
    }


def completion_chunk(
    id_: str, model: str, created: int, index: int, text: str, finish_reason: str | None
) -> dict[str, Any]:
    return {
        "id": id_,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


def chat_response(
    id_: str, model: str, created: int, choices: list[tuple[str, str]], usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": id_,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": reason,
            }
            for i, (text, reason) in enumerate(choices)
        ],
        "usage": usage,
    }


def chat_chunk(
    id_: str, model: str, created: int, index: int, delta: dict[str, str], finish_reason: str | None
) -> dict[str, Any]:
    return {
        "id": id_,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(id_: str, model: str, created: int, obj: str, usage: dict[str, int]) -> dict[str, Any]:
    """The last chunk of a stream asked for with ``stream_options.include_usage``."""
    return {"id": id_, "object": obj, "created": created, "model": model, "choices": [], "usage": usage}


def embedding_response(
    model: str, vectors: np.ndarray[Any, Any], tokens: int, *, as_base64: bool
) -> dict[str, Any]:
    data = []
    for i, row in enumerate(vectors):
        row32 = np.ascontiguousarray(row, dtype="<f4")
        value: Any = base64.b64encode(row32.tobytes()).decode() if as_base64 else row32.tolist()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
