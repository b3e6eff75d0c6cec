"""Deterministic, dependency-free text embeddings for the offline gateway.

A text is lower-cased and split into words (runs of letters, digits and
underscores; punctuation is dropped). Each word is hashed with BLAKE2b into a
few signed buckets of the vector; the bucket values are summed and the result
is L2-normalised. Texts that share words therefore point in similar
directions, and texts sharing no word are close to orthogonal. A text with no
word at all (for example ``""``) maps to the fixed unit vector
``[1.0, 0.0, 0.0, ...]``. Values are rounded to float32, so the ``float`` and
``base64`` encodings of the gateway carry exactly the same numbers.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from functools import lru_cache
from typing import Any

from langchain_holysheep.testing._replies import dumps, error_body

__all__ = [
    "DEFAULT_DIMENSIONS",
    "MAX_DIMENSIONS",
    "MAX_INPUTS",
    "MAX_WORDS",
    "embed_text",
    "render_embeddings",
]

DEFAULT_DIMENSIONS = 256
"""Vector length when a request does not ask for ``dimensions``."""
MAX_DIMENSIONS = 8192
"""Largest ``dimensions`` the gateway accepts."""
MAX_INPUTS = 2048
"""Most inputs accepted in one request, as OpenAI does."""
MAX_WORDS = 8192
"""Most words accepted in one input (the offline "context length")."""

_BUCKETS_PER_WORD = 4
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=65536)
def _word_buckets(word: str, dimensions: int) -> tuple[tuple[int, float], ...]:
    digest = hashlib.blake2b(word.encode(), digest_size=4 * _BUCKETS_PER_WORD).digest()
    buckets = []
    for i in range(_BUCKETS_PER_WORD):
        value = int.from_bytes(digest[4 * i : 4 * i + 4], "little")
        sign = 1.0 if value & 1 else -1.0
        buckets.append(((value >> 1) % dimensions, sign))
    return tuple(buckets)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _float32(values: list[float]) -> list[float]:
    fmt = f"<{len(values)}f"
    return list(struct.unpack(fmt, struct.pack(fmt, *values)))


def embed_text(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """Return the gateway's deterministic embedding of a text.

    Args:
        text: The text to embed.
        dimensions: The vector length.

    Returns:
        A unit-length vector (float32 precision) equal to what
        ``POST /v1/embeddings`` returns for this text.

    Raises:
        ValueError: If ``dimensions`` is not between 1 and ``MAX_DIMENSIONS``.
    """
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ValueError(f"dimensions must be between 1 and {MAX_DIMENSIONS}")
    vector = [0.0] * dimensions
    words = _words(text)
    if not words:
        vector[0] = 1.0
        return vector
    for word in words:
        for bucket, sign in _word_buckets(word, dimensions):
            vector[bucket] += sign
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        vector[0] = 1.0
        return vector
    return _float32([v / norm for v in vector])


def _input_texts(raw: object) -> list[str] | None:
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return [" ".join(str(x) for x in raw)]
    texts: list[str] = []
    for item in raw:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, list) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in item
        ):
            texts.append(" ".join(str(x) for x in item))
        else:
            return None
    return texts


def _bad(message: str, param: str | None, code: str | None = None) -> bytes:
    return error_body(message, "invalid_request_error", param, code)


def _parse_request(body: dict[str, Any]) -> tuple[list[str], int, str] | bytes:
    """Validate a request: (texts, dimensions, encoding), or an error body."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _bad("you must provide a model parameter", None)
    texts = _input_texts(body.get("input"))
    if texts is None:
        return _bad(
            "'input' must be a non-empty string, array of strings, or array of "
            "token arrays.",
            "input",
        )
    if len(texts) > MAX_INPUTS:
        return _bad(
            f"Too many inputs: {len(texts)}. At most {MAX_INPUTS} inputs are "
            "allowed per request.",
            "input",
        )
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = DEFAULT_DIMENSIONS
    if (
        not isinstance(dimensions, int)
        or isinstance(dimensions, bool)
        or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        return _bad(
            f"'dimensions' must be an integer between 1 and {MAX_DIMENSIONS}.",
            "dimensions",
        )
    encoding = body.get("encoding_format") or "float"
    if encoding not in {"float", "base64"}:
        return _bad("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    return texts, dimensions, encoding


def render_embeddings(body: dict[str, Any]) -> tuple[int, bytes]:
    """Answer an embeddings request.

    Args:
        body: The parsed request body.

    Returns:
        The HTTP status and the JSON body (an OpenAI-style error when the
        request is invalid).
    """
    parsed = _parse_request(body)
    if isinstance(parsed, bytes):
        return 400, parsed
    texts, dimensions, encoding = parsed
    total = 0
    for text in texts:
        count = len(_words(text))
        if count > MAX_WORDS:
            return 400, _bad(
                f"This model's maximum context length is {MAX_WORDS} tokens, "
                f"however you requested {count} tokens in one input. Please "
                "reduce your input.",
                "input",
                "context_length_exceeded",
            )
        total += count
    data: list[dict[str, Any]] = []
    for index, text in enumerate(texts):
        vector = embed_text(text, dimensions)
        embedding: list[float] | str = vector
        if encoding == "base64":
            packed = struct.pack(f"<{dimensions}f", *vector)
            embedding = base64.b64encode(packed).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    document = {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": total, "total_tokens": total},
    }
    return 200, dumps(document).encode()
