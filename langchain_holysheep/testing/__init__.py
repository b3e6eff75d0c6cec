"""Offline testing tools: a loopback OpenAI-compatible gateway.

Use :class:`OfflineGateway` to run LangChain chains, agents and benchmarks
against a local server speaking the OpenAI chat-completions, models and
embeddings protocol, with scripted :class:`Reply` and :class:`Fault` answers
and a log of every :class:`RecordedRequest`. Only the standard library is used.
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
from langchain_holysheep.testing._replies import Fault, Reply, ToolCall

__all__ = [
    "DEFAULT_MODELS",
    "Endpoint",
    "Fault",
    "OfflineGateway",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ToolCall",
    "embed_text",
]
