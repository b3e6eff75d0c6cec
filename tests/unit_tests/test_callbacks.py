"""Tests for langchain_holysheep.callbacks."""

import asyncio
import time
import uuid
from dataclasses import fields
from decimal import Decimal

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from pydantic import Field

from langchain_holysheep.callbacks import (
    HolySheepUsageTracker,
    ModelUsage,
    Percentiles,
    Tally,
    UsageSummary,
    holysheep_usage,
)
from langchain_holysheep.pricing import (
    PRICES_FILE_ENV_VAR,
    cost_from_usage,
    load_price_table,
)


@pytest.fixture(autouse=True)
def _no_env_prices(monkeypatch):
    monkeypatch.delenv(PRICES_FILE_ENV_VAR, raising=False)


class UsageChatModel(BaseChatModel):
    """Answers "ok" with fixed usage; streams three chunks, usage on the last."""

    model_name: str = "mistral-small-2603"
    input_tokens: int = 1234
    output_tokens: int = 567
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    fail: bool = False
    extra_response_metadata: dict = Field(default_factory=dict)
    chunk_delay_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "usage-fake"

    def _usage(self):
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "input_token_details": {"cache_read": self.cached_tokens},
            "output_token_details": {"reasoning": self.reasoning_tokens},
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs,
    ) -> ChatResult:
        if self.fail:
            msg = "upstream exploded"
            raise RuntimeError(msg)
        message = AIMessage(
            content="ok",
            usage_metadata=self._usage(),
            response_metadata={
                "model_name": self.model_name,
                **self.extra_response_metadata,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        if self.fail:
            msg = "upstream exploded"
            raise RuntimeError(msg)
        for text in ("o", "k", ""):
            time.sleep(self.chunk_delay_s)
            last = text == ""
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=text,
                    usage_metadata=self._usage() if last else None,
                    response_metadata={"model_name": self.model_name} if last else {},
                    chunk_position="last" if last else None,
                )
            )


def expected_cost(model, inp, out, cached=0):
    usage = {
        "input_tokens": inp,
        "output_tokens": out,
        "input_token_details": {"cache_read": cached},
    }
    cost = cost_from_usage(model, usage, table=load_price_table())
    assert cost is not None
    return cost.usd


def test_totals_and_cost_by_model_through_context_manager():
    mistral = UsageChatModel()
    gpt = UsageChatModel(
        model_name="gpt-4.1",
        input_tokens=1000,
        output_tokens=300,
        cached_tokens=200,
        reasoning_tokens=100,
    )
    with holysheep_usage() as tracker:
        mistral.invoke("hi")
        mistral.invoke("hi again")
        gpt.invoke("hello")
    outside = mistral.invoke("not tracked")  # after the block: not counted
    assert outside.content == "ok"

    s = tracker.snapshot()
    assert s.requests == 3
    assert s.errors == 0
    assert s.input_tokens == 2 * 1234 + 1000
    assert s.output_tokens == 2 * 567 + 300
    assert s.cached_tokens == 200
    assert s.reasoning_tokens == 100
    assert s.cost_by_model == {
        "mistral-small-2603": 2 * 0.000587,
        "gpt-4.1": expected_cost("gpt-4.1", 1000, 300, 200),
    }
    assert s.total_cost_usd == float(
        Decimal("0.001174") + Decimal(repr(expected_cost("gpt-4.1", 1000, 300, 200)))
    )
    assert s.cost_is_complete
    assert s.by_model["gpt-4.1"].requests == 1
    assert s.by_model["mistral-small-2603"].priced_requests == 2
    assert s.total_ms is not None
    assert s.total_ms.count == 3
    assert s.by_model["mistral-small-2603"].total_ms.count == 2
    assert s.ttft_ms is None  # nothing was streamed


def test_errors_are_counted_with_latency_and_model_hint():
    ok = UsageChatModel()
    broken = UsageChatModel(model_name="gpt-4.1", fail=True)
    with holysheep_usage() as tracker:
        ok.invoke("x")
        for _ in range(2):
            with pytest.raises(RuntimeError, match="exploded"):
                broken.invoke("x")
    s = tracker.snapshot()
    assert s.requests == 3
    assert s.errors == 2
    failed = s.by_model["gpt-4.1"]  # from ls_model_name seen at start
    assert failed.errors == 2
    assert failed.requests == 2
    assert failed.cost_usd is None
    assert failed.unpriced_requests == 0  # errors are not "unpriced"
    assert failed.total_ms.count == 2
    assert s.cost_by_model == {"mistral-small-2603": 0.000587}
    assert "gpt-4.1" not in s.cost_by_model


def test_ttft_recorded_when_streaming():
    model = UsageChatModel(chunk_delay_s=0.002)
    with holysheep_usage() as tracker:
        chunks = list(model.stream("hi"))
    assert "".join(str(c.content) for c in chunks) == "ok"
    s = tracker.snapshot()
    assert s.requests == 1
    assert s.input_tokens == 1234  # usage from the last chunk
    assert s.cost_by_model == {"mistral-small-2603": 0.000587}
    assert s.ttft_ms is not None
    assert s.ttft_ms.count == 1
    assert s.total_ms is not None
    assert 0 < s.ttft_ms.p50 <= s.total_ms.p50
    assert s.by_model["mistral-small-2603"].ttft_ms.count == 1


async def test_async_streaming_and_generic_fake_model():
    fake = GenericFakeChatModel(messages=iter(["hello world", "second"]))
    model = UsageChatModel(model_name="deepseek-v3.2")
    with holysheep_usage() as tracker:
        chunks = [c async for c in fake.astream("hi")]
        await model.ainvoke("hi")
    assert "".join(str(c.content) for c in chunks) == "hello world"
    s = tracker.snapshot()
    assert s.requests == 2
    # GenericFakeChatModel reports no usage and no model name: unpriced, not $0
    assert s.unpriced_requests == 1
    assert not s.cost_is_complete
    assert s.unpriced_models == ("unknown",)
    assert s.by_model["unknown"].cost_usd is None
    assert s.by_model["unknown"].ttft_ms.count == 1
    assert s.cost_by_model == {
        "deepseek-v3.2": expected_cost("deepseek-v3.2", 1234, 567)
    }


def test_unknown_model_is_unpriced_not_zero():
    model = UsageChatModel(
        model_name="some-new-model", input_tokens=10, output_tokens=5
    )
    tracker = HolySheepUsageTracker()
    model.invoke("x", config={"callbacks": [tracker]})
    s = tracker.snapshot()
    assert s.total_cost_usd == 0.0
    assert s.cost_by_model == {}
    assert s.unpriced_requests == 1
    assert s.unpriced_input_tokens == 10
    assert s.unpriced_output_tokens == 5
    assert s.by_model["some-new-model"].cost_usd is None
    text = tracker.table()
    assert "n/a*" in text
    assert "some-new-model" in text
    assert "1 call(s) with unknown cost" in text


def test_response_metadata_cost_is_used_instead_of_recomputing():
    reported = UsageChatModel(
        model_name="gpt-4.1",
        extra_response_metadata={"cost_usd": 0.5, "cost_source": "gateway"},
    )
    table_priced = UsageChatModel(
        model_name="unpriced-model",
        extra_response_metadata={"cost_usd": 0.25, "cost_source": "price_table"},
    )
    token_usage = UsageChatModel(
        model_name="other-model",
        extra_response_metadata={"token_usage": {"cost_usd": 0.125}},
    )
    tracker = HolySheepUsageTracker()
    for model in (reported, table_priced, token_usage):
        model.invoke("x", config={"callbacks": [tracker]})
    s = tracker.snapshot()
    assert s.cost_by_model == {
        "gpt-4.1": 0.5,
        "unpriced-model": 0.25,
        "other-model": 0.125,
    }
    assert s.total_cost_usd == 0.875
    assert s.by_model["gpt-4.1"].gateway_priced_requests == 1
    assert s.by_model["unpriced-model"].gateway_priced_requests == 0
    assert s.by_model["other-model"].gateway_priced_requests == 1


def test_custom_price_table():
    table = load_price_table(
        {"x-model": {"input_per_million": 1, "output_per_million": 2}}
    )
    model = UsageChatModel(
        model_name="x-model", input_tokens=1_000_000, output_tokens=0
    )
    with holysheep_usage(table) as tracker:
        model.invoke("x")
    assert tracker.price_table is table
    assert tracker.snapshot().cost_by_model == {"x-model": 1.0}


def test_table_contains_the_numbers():
    model = UsageChatModel(cached_tokens=34, reasoning_tokens=7)
    with holysheep_usage() as tracker:
        model.invoke("a")
        model.invoke("b")
    text = tracker.table()
    lines = text.splitlines()
    assert lines[0].startswith("model")
    for column in ("requests", "errors", "input", "output", "cached", "reasoning"):
        assert column in lines[0]
    assert "cost USD" in lines[0]
    assert "total ms p50/p95/p99" in lines[0]
    assert "TTFT ms p50/p95/p99" in lines[0]
    row = next(line for line in lines if line.startswith("mistral-small-2603"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[:8] == [
        "mistral-small-2603",
        "2",
        "0",
        "2468",
        "1134",
        "68",
        "14",
        "0.001174",
    ]
    assert cells[9] == "-"  # no TTFT without streaming
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert "0.001174" in total
    # fixed width: header, rule and rows line up on the separators
    assert len({line.index("|") for line in lines if "|" in line}) == 1
    assert str(tracker) == text


def test_reset():
    model = UsageChatModel()
    with holysheep_usage() as tracker:
        model.invoke("a")
        assert tracker.snapshot().requests == 1
        tracker.reset()
        empty = tracker.snapshot()
        assert empty.requests == 0
        assert empty.total_cost_usd == 0.0
        assert empty.by_model == {}
        assert empty.total_ms is None
        model.invoke("b")
    assert tracker.snapshot().requests == 1
    assert tracker.snapshot().cost_by_model == {"mistral-small-2603": 0.000587}


def test_explicit_callback_without_context_manager():
    tracker = HolySheepUsageTracker()
    model = UsageChatModel()
    model.invoke("a", config={"callbacks": [tracker]})
    model.invoke("b")  # not tracked
    assert tracker.snapshot().requests == 1
    assert tracker.run_inline is True


def test_context_and_explicit_is_not_double_counted():
    model = UsageChatModel()
    with holysheep_usage() as tracker:
        model.invoke("a", config={"callbacks": [tracker]})
    assert tracker.snapshot().requests == 1
    assert tracker.snapshot().total_cost_usd == 0.000587


def test_duplicate_events_for_a_run_are_counted_once():
    tracker = HolySheepUsageTracker()
    model = UsageChatModel()
    result = model.generate([[HumanMessage("hi")]])
    run_id = uuid.uuid4()
    tracker.on_chat_model_start(
        {}, [[]], run_id=run_id, metadata={"ls_model_name": "x"}
    )
    tracker.on_chat_model_start({}, [[]], run_id=run_id)
    tracker.on_llm_end(result, run_id=run_id)
    tracker.on_llm_end(result, run_id=run_id)
    tracker.on_llm_error(RuntimeError(), run_id=run_id)
    s = tracker.snapshot()
    assert s.requests == 1
    assert s.errors == 0
    assert s.total_ms.count == 1
    assert s.cost_by_model == {"mistral-small-2603": 0.000587}


def test_nested_context_managers_both_see_inner_calls():
    model = UsageChatModel()
    with holysheep_usage() as outer:
        model.invoke("a")
        with holysheep_usage() as inner:
            model.invoke("b")
        model.invoke("c")
    assert outer.snapshot().requests == 3
    assert inner.snapshot().requests == 1
    with holysheep_usage(tracker=outer) as same:
        model.invoke("d")
    assert same is outer
    assert outer.snapshot().requests == 4
    with (
        pytest.raises(ValueError, match="not both"),
        holysheep_usage(load_price_table(), tracker=outer),
    ):
        pass


def test_tracker_sees_model_calls_inside_a_chain():
    model = UsageChatModel()
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    chain = prompt | model | RunnableLambda(lambda m: m.content)
    with holysheep_usage() as tracker:
        assert chain.invoke({"q": "x"}) == "ok"
        assert chain.batch([{"q": "y"}, {"q": "z"}]) == ["ok", "ok"]
    s = tracker.snapshot()
    assert s.requests == 3
    assert s.input_tokens == 3 * 1234
    # explicit callbacks on the chain reach the model too
    other = HolySheepUsageTracker()
    chain.invoke({"q": "x"}, config={"callbacks": [other]})
    assert other.snapshot().requests == 1


def test_tally_adds_field_by_field():
    a = Tally(
        requests=2, errors=1, input_tokens=10, priced_requests=1, cost=Decimal("0.1")
    )
    b = Tally(requests=1, output_tokens=5, unpriced_requests=1, cost=Decimal("0.2"))
    total = a + b
    assert total == Tally(
        requests=3,
        errors=1,
        input_tokens=10,
        output_tokens=5,
        priced_requests=1,
        unpriced_requests=1,
        cost=Decimal("0.3"),
    )
    assert type(total) is Tally
    assert a + Tally() == a
    assert a.cost_usd == 0.1
    assert Tally(requests=1, unpriced_requests=1).cost_usd is None  # never $0
    with pytest.raises(TypeError):
        a + 1


def test_usage_records_are_tallies():
    model = UsageChatModel()
    with holysheep_usage() as tracker:
        model.invoke("a")
        model.invoke("b")
    summary = tracker.snapshot()
    assert isinstance(summary, UsageSummary)
    usage = summary.by_model["mistral-small-2603"]
    assert isinstance(usage, ModelUsage)
    assert isinstance(usage, Tally)
    assert usage.priced_requests == summary.priced_requests == 2
    assert summary.total_cost_usd == usage.cost_usd == summary.cost_usd
    # a summary's counts are the sum of its models' counts
    counts = {f.name: getattr(summary, f.name) for f in fields(Tally)}
    assert Tally() + usage == Tally(**counts)


def test_percentiles_nearest_rank():
    p = Percentiles.from_samples([float(x) for x in range(100, 0, -1)])
    assert p is not None
    assert (p.count, p.p50, p.p95, p.p99, p.max) == (100, 50.0, 95.0, 99.0, 100.0)
    assert p.mean == 50.5
    one = Percentiles.from_samples([7.0])
    assert (one.p50, one.p95, one.p99) == (7.0, 7.0, 7.0)
    small = Percentiles.from_samples([1.0, 2.0, 3.0, 4.0])
    assert (small.p50, small.p95, small.p99) == (2.0, 4.0, 4.0)
    assert Percentiles.from_samples([]) is None


def test_repr_and_summary_str():
    tracker = HolySheepUsageTracker()
    UsageChatModel().invoke("x", config={"callbacks": [tracker]})
    assert "requests=1" in repr(tracker)
    assert str(tracker.snapshot()) == tracker.table()


async def test_async_context_manager_tracks_gathered_calls():
    model = UsageChatModel(model_name="gemini-2.5-flash")
    with holysheep_usage() as tracker:
        await asyncio.gather(*(model.ainvoke(str(i)) for i in range(10)))
    s = tracker.snapshot()
    assert s.requests == 10
    assert s.cost_by_model["gemini-2.5-flash"] == float(
        Decimal(repr(expected_cost("gemini-2.5-flash", 1234, 567))) * 10
    )
