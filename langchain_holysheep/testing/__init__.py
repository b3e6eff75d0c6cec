"""Offline testing tools: a loopback OpenAI-compatible gateway.

Use :class:`OfflineGateway` to run LangChain chains, agents and benchmarks
against a local server speaking the OpenAI chat-completions, models and
embeddings protocol, with scripted :class:`Reply` and :class:`Fault` answers,
a log of every :class:`RecordedRequest`, and optional per-key
:class:`RateLimits` (real 429s, logged as :class:`RateLimitDecision`). Only the
standard library is used.
See ``docs/testing.md``.
"""

from langchain_holysheep.testing._embeddings import embed_text
from langchain_holysheep.testing._gateway import (
    DEFAULT_MODELS,
    Endpoint,
    OfflineGateway,
    RecordedRequest,
    Responder,
)
from langchain_holysheep.testing._limits import RateLimitDecision, RateLimits
from langchain_holysheep.testing._replies import Fault, Reply, ToolCall

__all__ = [
    "DEFAULT_MODELS",
    "Endpoint",
    "Fault",
    "OfflineGateway",
    "RateLimitDecision",
    "RateLimits",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ToolCall",
    "embed_text",
]
