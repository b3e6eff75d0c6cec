"""LangChain integration for the HolySheep AI gateway.

The public names load on first use (PEP 562), so ``import langchain_holysheep``
(and the pytest plugin that ships with it) costs almost nothing, and ``openai``
loads only when the first client is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_holysheep._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_holysheep.chat_models import ChatHolySheep
    from langchain_holysheep.embeddings import HolySheepEmbeddings
    from langchain_holysheep.fallback import ChatHolySheepFallback
    from langchain_holysheep.ratelimit import HolySheepRateLimiter

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ChatHolySheep": "langchain_holysheep.chat_models",
    "ChatHolySheepFallback": "langchain_holysheep.fallback",
    "HolySheepEmbeddings": "langchain_holysheep.embeddings",
    "HolySheepRateLimiter": "langchain_holysheep.ratelimit",
}

__all__ = [
    "ChatHolySheep",
    "ChatHolySheepFallback",
    "HolySheepEmbeddings",
    "HolySheepRateLimiter",
    "__version__",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
