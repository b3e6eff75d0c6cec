"""HolySheepUsageTracker under concurrent threads and asyncio tasks.

Uses only a tiny in-file chat model (no network, no ChatHolySheep): every call's
usage is derived from its input, so the expected totals are the sum of what each
call itself returned.
"""

import asyncio
import contextvars
import threading
from collections import Counter
from decimal import Decimal

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_holysheep.callbacks import HolySheepUsageTracker, holysheep_usage
from langchain_holysheep.pricing import (
    PRICES_FILE_ENV_VAR,
    cost_from_usage,
    load_price_table,
)

MODELS = (
    "gpt-4.1",
    "claude-sonnet-4.5",
    "gemini-2.5-flash",
    "mistral-small-2603",
    "deepseek-v3.2",
    "not-in-the-table",
)
THREADS = 8
CALLS_PER_THREAD = 200
ASYNC_CALLS = 500


@pytest.fixture(autouse=True)
def _no_env_prices(monkeypatch):
    monkeypatch.delenv(PRICES_FILE_ENV_VAR, raising=False)


def _plan(n: int):
    """Model, usage and whether to fail, for call number n."""
    output = 5 + n % 41
    usage = {
        "input_tokens": 100 + n,
        "output_tokens": output,
        "total_tokens": 100 + n + output,
        "input_token_details": {"cache_read": n % 60},
        "output_token_details": {"reasoning": n % 5},
    }
    return MODELS[n % len(MODELS)], usage, n % 97 == 13


class PlannedChatModel(BaseChatModel):
    """Input text is a call number; usage and model follow from it."""

    @property
    def _llm_type(self) -> str:
        return "planned-fake"

    def _message(self, messages):
        model, usage, fail = _plan(int(str(messages[-1].content)))
        if fail:
            msg = "planned failure"
            raise RuntimeError(msg)
        return model, usage

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        model, usage = self._message(messages)
        message = AIMessage(
            content="ok", usage_metadata=usage, response_metadata={"model_name": model}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
        await asyncio.sleep(0)  # let the other tasks interleave
        return self._generate(messages, stop=stop, **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        model, usage = self._message(messages)
        yield ChatGenerationChunk(message=AIMessageChunk(content="o"))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="k",
                usage_metadata=usage,
                response_metadata={"model_name": model},
                chunk_position="last",
            )
        )


class Expected:
    """Thread-safe tally of what the calls themselves returned."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.tokens = Counter()
        self.cost_by_model: dict[str, Decimal] = {}
        self.unpriced = 0
        self.streamed = 0

    def record(self, message) -> None:
        usage = message.usage_metadata
        model = message.response_metadata["model_name"]
        cost = cost_from_usage(model, usage, table=load_price_table())
        with self.lock:
            self.requests += 1
            self.tokens["input"] += usage["input_tokens"]
            self.tokens["output"] += usage["output_tokens"]
            self.tokens["cached"] += usage["input_token_details"]["cache_read"]
            self.tokens["reasoning"] += usage["output_token_details"]["reasoning"]
            if cost is None:
                self.unpriced += 1
            else:
                self.cost_by_model[model] = (
                    self.cost_by_model.get(model, Decimal(0)) + cost.usd_decimal
                )

    def error(self) -> None:
        with self.lock:
            self.requests += 1
            self.errors += 1

    def check(self, tracker: HolySheepUsageTracker) -> None:
        s = tracker.snapshot()
        assert s.requests == self.requests
        assert s.errors == self.errors
        assert s.input_tokens == self.tokens["input"]
        assert s.output_tokens == self.tokens["output"]
        assert s.cached_tokens == self.tokens["cached"]
        assert s.reasoning_tokens == self.tokens["reasoning"]
        assert s.unpriced_requests == self.unpriced
        assert s.cost_by_model == {m: float(c) for m, c in self.cost_by_model.items()}
        assert s.total_cost_usd == float(sum(self.cost_by_model.values()))
        assert sum(u.requests for u in s.by_model.values()) == s.requests
        assert s.total_ms is not None
        assert s.total_ms.count == s.requests
        assert (s.ttft_ms.count if s.ttft_ms else 0) == self.streamed


def _call(model, n, expected, config):
    try:
        if n % 3 == 0:
            full = None
            for chunk in model.stream(str(n), config=config):
                full = chunk if full is None else full + chunk
            with expected.lock:
                expected.streamed += 1
            message = full
        else:
            message = model.invoke(str(n), config=config)
    except RuntimeError:
        expected.error()
    else:
        expected.record(message)


def _hammer_threads(target) -> None:
    threads = [threading.Thread(target=target, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_threads_with_explicit_callback():
    tracker = HolySheepUsageTracker()
    model = PlannedChatModel()
    expected = Expected()

    def worker(t):
        for i in range(CALLS_PER_THREAD):
            _call(model, t * CALLS_PER_THREAD + i, expected, {"callbacks": [tracker]})

    _hammer_threads(worker)
    assert expected.requests == THREADS * CALLS_PER_THREAD
    assert expected.errors > 0
    assert expected.unpriced > 0
    assert expected.streamed > 0
    expected.check(tracker)


def test_threads_under_context_manager_with_copied_context():
    model = PlannedChatModel()
    expected = Expected()
    with holysheep_usage() as tracker:
        # new threads do not inherit context variables: run each thread in its
        # own copy of the with-block's context
        contexts = [contextvars.copy_context() for _ in range(THREADS)]

        def run(t):
            contexts[t].run(
                lambda: [
                    _call(model, t * CALLS_PER_THREAD + i, expected, None)
                    for i in range(CALLS_PER_THREAD)
                ]
            )

        _hammer_threads(run)
    model.invoke("1")  # outside the block: not counted
    assert expected.requests == THREADS * CALLS_PER_THREAD
    expected.check(tracker)


async def test_asyncio_gather_under_context_manager():
    model = PlannedChatModel()
    expected = Expected()

    async def one(n):
        try:
            message = await model.ainvoke(str(n))
        except RuntimeError:
            expected.error()
        else:
            expected.record(message)

    with holysheep_usage() as tracker:
        await asyncio.gather(*(one(n) for n in range(ASYNC_CALLS)))
    assert expected.requests == ASYNC_CALLS
    assert expected.errors == sum(1 for n in range(ASYNC_CALLS) if _plan(n)[2])
    expected.check(tracker)


async def test_asyncio_gather_with_explicit_callback_and_streams():
    model = PlannedChatModel()
    expected = Expected()
    tracker = HolySheepUsageTracker()
    config = {"callbacks": [tracker]}

    async def one(n):
        try:
            if n % 3 == 0:
                full = None
                async for chunk in model.astream(str(n), config=config):
                    full = chunk if full is None else full + chunk
                with expected.lock:
                    expected.streamed += 1
                message = full
            else:
                message = await model.ainvoke(str(n), config=config)
        except RuntimeError:
            expected.error()
        else:
            expected.record(message)

    await asyncio.gather(*(one(n) for n in range(ASYNC_CALLS)))
    assert expected.streamed > 0
    expected.check(tracker)
