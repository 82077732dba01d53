"""Wire codecs of the inference protocols: each turns bytes into arrays and back."""

from __future__ import annotations

from aiaas.serving.protocols.v1 import V1Request, decode_v1, encode_v1
from aiaas.serving.protocols.v2 import V2Request, decode_v2, encode_v2

__all__ = ["V1Request", "V2Request", "decode_v1", "decode_v2", "encode_v1", "encode_v2"]
