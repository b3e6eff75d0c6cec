"""LangChain integration for the HolySheep AI gateway.

The public names load on first use (PEP 562), so ``import langchain_holysheep``
(and the pytest plugin that ships with it) costs almost nothing, and ``openai``
loads only when the first client is built.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'langchain_holysheep' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
