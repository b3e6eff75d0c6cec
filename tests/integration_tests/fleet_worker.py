"""One process of a test fleet: a ChatHolySheep sharing (or not) a limiter.

``test_fleet.py`` starts 8 of these with multiprocessing's ``spawn`` method, so
each worker is its own interpreter, as in a real fleet, and reuses them for
each run. Per run a worker builds its limiter and model, says it is ready,
waits for the start, makes its requests and reports its 429s. Odd workers call
``ainvoke``, even ones ``invoke``.
"""

from __future__ import annotations

import asyncio
import os


def serve(index, jobs, ready, results):
    """Take runs from ``jobs`` until ``None``."""
    os.environ.pop("HOLYSHEEP_REDIS_URL", None)
    import openai  # noqa: F401  (loaded before any run, as in a warm worker)

    while (config := jobs.get()) is not None:
        llm = _model(config)
        ready.put(index)
        jobs.get()  # the start
        results.put((index, _requests(llm, config["requests"], index)))


def _model(config):
    from langchain_core.rate_limiters import InMemoryRateLimiter

    from langchain_holysheep import ChatHolySheep, HolySheepRateLimiter

    if "chain" in config:  # a fallback chain with a shared breaker policy
        from langchain_holysheep.fallback import (
            ChatHolySheepFallback,
            CircuitBreakerPolicy,
        )

        return ChatHolySheepFallback(
            models=config["chain"]["models"],
            base_url=config["base_url"],
            api_key=config["api_key"],
            circuit_breaker=CircuitBreakerPolicy(**config["chain"]["policy"]),
        )
    if config["limiter"] == "holysheep":
        limiter = HolySheepRateLimiter(**config["limiter_kwargs"])
    else:
        limiter = InMemoryRateLimiter(**config["limiter_kwargs"])
    kwargs = {"max_retries": 0, **config["model_kwargs"]}
    return ChatHolySheep(
        base_url=config["base_url"],
        api_key=config["api_key"],
        rate_limiter=limiter,
        **kwargs,
    )


def _requests(llm, count, index):
    """Make ``count`` requests; return how many the gateway refused (429)."""
    from langchain_holysheep.errors import HolySheepRateLimitError

    refused = 0
    if index % 2:

        async def calls():
            nonlocal refused
            for _ in range(count):
                try:
                    await llm.ainvoke("hi")
                except HolySheepRateLimitError:
                    refused += 1

        asyncio.run(calls())
        return refused
    for _ in range(count):
        try:
            llm.invoke("hi")
        except HolySheepRateLimitError:
            refused += 1
    return refused
