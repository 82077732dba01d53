"""Wire codecs of the inference protocols: each turns bytes into arrays and back."""

from __future__ import annotations

from aiaas.serving.protocols.binary import (
    BINARY_HEADER,
    BINARY_MEDIA_TYPE,
    decode_binary_v2,
    encode_binary_v2,
    parse_header_length,
)
from aiaas.serving.protocols.v1 import V1Request, decode_v1, encode_v1
from aiaas.serving.protocols.v2 import V2Request, decode_v2, encode_v2

__all__ = [
    "BINARY_HEADER",
    "BINARY_MEDIA_TYPE",
    "V1Request",
    "V2Request",
    "decode_binary_v2",
    "decode_v1",
    "decode_v2",
    "encode_binary_v2",
    "encode_v1",
    "encode_v2",
    "parse_header_length",
]
