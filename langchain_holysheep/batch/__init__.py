"""Bulk runs: ``holysheep batch`` and :func:`run_batch`.

Send a file of chat-completion requests (OpenAI Batch API JSONL) through the
gateway and get one output line per request, resumable after a crash, on a
budget, within the key's limits, from one process up to a Ray cluster::

    from langchain_holysheep.batch import run_batch

    summary = run_batch("requests.jsonl", "answers.jsonl", model="gpt-4.1")
    print(summary.message())

The public names load on first use (PEP 562): importing this package loads
neither ``openai`` nor Ray. See ``docs/batch.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_holysheep._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_holysheep.batch._api import BatchOptions, arun_batch, run_batch
    from langchain_holysheep.batch._engine import BatchSettings
    from langchain_holysheep.batch._format import BatchInputError
    from langchain_holysheep.batch._ray_data import HolySheepChatCompletions
    from langchain_holysheep.batch._summary import BatchSummary
    from langchain_holysheep.batch._types import (
        EXIT_BUDGET,
        EXIT_INPUT,
        EXIT_OK,
        EXIT_SOME_FAILED,
    )

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "BatchInputError": "langchain_holysheep.batch._format",
    "BatchOptions": "langchain_holysheep.batch._api",
    "BatchSettings": "langchain_holysheep.batch._engine",
    "BatchSummary": "langchain_holysheep.batch._summary",
    "EXIT_BUDGET": "langchain_holysheep.batch._types",
    "EXIT_INPUT": "langchain_holysheep.batch._types",
    "EXIT_OK": "langchain_holysheep.batch._types",
    "EXIT_SOME_FAILED": "langchain_holysheep.batch._types",
    "HolySheepChatCompletions": "langchain_holysheep.batch._ray_data",
    "arun_batch": "langchain_holysheep.batch._api",
    "run_batch": "langchain_holysheep.batch._api",
}

__all__ = [
    "EXIT_BUDGET",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "BatchInputError",
    "BatchOptions",
    "BatchSettings",
    "BatchSummary",
    "HolySheepChatCompletions",
    "arun_batch",
    "run_batch",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
