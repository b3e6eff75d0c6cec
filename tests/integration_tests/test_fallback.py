"""The fallback chain, as a spec: real HTTP against the offline gateway.

Most behaviours run four ways (``invoke``, ``ainvoke``, ``stream``, ``astream``):
the chain must behave the same whichever entry point a program uses.
"""

from __future__ import annotations

import asyncio
import logging
import re
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain_core.exceptions import ModelError
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._client import get_sync_client
from langchain_holysheep.errors import (
    HolySheepAuthenticationError,
    HolySheepBadRequestError,
    HolySheepContextOverflowError,
    HolySheepError,
    HolySheepRateLimitError,
    HolySheepServerError,
    HolySheepStreamError,
)
from langchain_holysheep.fallback import (
    ChatHolySheepFallback,
    CircuitBreakerPolicy,
    CircuitState,
    HolySheepCircuitOpenError,
    HolySheepFallbackError,
    HolySheepResponseRejectedError,
    empty_content,
    reset_circuit_breakers,
)
from langchain_holysheep.testing import Fault, Reply, ToolCall
from tests.modes import MODES, STREAMS, call, collect
from tests.shared_tools import Person, add, multiply

KEY = "cr_fallback_integration_key_42"
A, B, C = "mistral-small-2603", "gemini-2.5-flash", "deepseek-v3.2"


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_circuit_breakers()
    yield
    reset_circuit_breakers()


@pytest.fixture
def make_chain(gw):
    def make(*models, **kwargs):
        kwargs.setdefault("base_url", gw.base_url)
        kwargs.setdefault("api_key", KEY)
        return ChatHolySheepFallback(models=list(models or (A, B, C)), **kwargs)

    return make


def models_asked(gw):
    return [r.model for r in gw.requests if r.path.endswith("/chat/completions")]


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


# ------------------------------------------------------------------ success
@pytest.mark.parametrize("mode", MODES)
async def test_first_succeeds(gw, make_chain, mode):
    answer = await call(make_chain(), mode)
    assert answer.content == "Offline reply to: hello"
    assert answer.response_metadata["model_name"] == A
    assert answer.response_metadata["fallback_attempts"] == []
    assert models_asked(gw) == [A]


@pytest.mark.parametrize("mode", MODES)
async def test_first_failed_second_succeeds(gw, make_chain, mode):
    gw.enqueue(Fault(status=503), model=A)
    answer = await call(make_chain(), mode)
    assert answer.content == "Offline reply to: hello"
    assert answer.response_metadata["model_name"] == B
    assert answer.response_metadata["fallback_attempts"] == [
        {
            "model": A,
            "error_type": "HolySheepServerError",
            "status_code": 503,
            "message": "Error code: 503 - The engine is currently overloaded. "
            "Please try again later.",
        }
    ]
    assert models_asked(gw) == [A, B]


@pytest.mark.parametrize("mode", MODES)
async def test_falls_over_on_rate_limit_timeout_and_connection_errors(
    gw, make_chain, mode
):
    gw.enqueue(Fault(status=429), model=A)
    gw.enqueue(Fault(status=500, close_connection=True), model=B)
    answer = await call(make_chain(A, B, C, timeout=5), mode)
    assert answer.response_metadata["model_name"] == C
    attempts = answer.response_metadata["fallback_attempts"]
    assert [a["error_type"] for a in attempts] == [
        "HolySheepRateLimitError",
        "HolySheepConnectionError",
    ]
    assert [a["status_code"] for a in attempts] == [429, None]


@pytest.mark.parametrize("mode", MODES)
async def test_falls_over_on_model_not_found(gw, make_chain, mode):
    gw.strict_models = True
    answer = await call(make_chain("no-such-model", B), mode)
    assert answer.response_metadata["model_name"] == B
    [attempt] = answer.response_metadata["fallback_attempts"]
    assert attempt["error_type"] == "HolySheepModelNotFoundError"
    assert attempt["status_code"] == 404


# ---------------------------------------------------------------- all fail
@pytest.mark.parametrize("mode", MODES)
async def test_all_failed(gw, make_chain, mode):
    gw.enqueue(Fault(status=503), model=A)
    gw.enqueue(Fault(status=429, message="slow down"), model=B)
    gw.enqueue(Fault(status=502), model=C)
    with pytest.raises(HolySheepFallbackError) as info:
        await call(make_chain(), mode)
    error = info.value
    assert isinstance(error, HolySheepError)
    assert isinstance(error, ModelError)
    assert isinstance(error, ExceptionGroup)
    assert [type(e) for e in error.exceptions] == [
        HolySheepServerError,
        HolySheepRateLimitError,
        HolySheepServerError,
    ]
    assert [a["model"] for a in error.attempts] == [A, B, C]
    assert [a["status_code"] for a in error.attempts] == [503, 429, 502]
    message = str(error)
    assert message.startswith("All 3 models of the fallback chain failed: ")
    assert f"1. {A}: HolySheepServerError (HTTP 503)" in message
    assert (
        f"2. {B}: HolySheepRateLimitError (HTTP 429): Error code: 429 - slow down"
        in (message)
    )
    assert f"3. {C}: HolySheepServerError (HTTP 502)" in message
    assert error.is_retryable
    assert models_asked(gw) == [A, B, C]


async def test_all_failed_error_never_contains_the_key(gw, make_chain):
    gw.set_default(Fault(status=500, message=f"upstream echoed {KEY}"))
    with pytest.raises(HolySheepFallbackError) as info:
        make_chain().invoke("hi")
    assert KEY not in str(info.value)
    assert all(KEY not in a["message"] for a in info.value.attempts)


# ----------------------------------------------------------- fail fast
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(status=401), HolySheepAuthenticationError),
        (Fault(status=400, message="bad tool schema"), HolySheepBadRequestError),
        (
            Fault(status=400, code="context_length_exceeded", message="too long"),
            HolySheepContextOverflowError,
        ),
    ],
)
async def test_non_trigger_error_propagates_without_trying_the_next(
    gw, make_chain, mode, fault, expected
):
    gw.enqueue(fault, model=A)
    with pytest.raises(expected):
        await call(make_chain(), mode)
    assert models_asked(gw) == [A]


async def test_non_trigger_error_after_a_fallback_notes_the_earlier_attempts(
    gw, make_chain
):
    gw.enqueue(Fault(status=503), model=A)
    gw.enqueue(Fault(status=401), model=B)
    with pytest.raises(HolySheepAuthenticationError) as info:
        make_chain().invoke("hi")
    [note] = info.value.__notes__
    assert f"{A}: HolySheepServerError (HTTP 503)" in note
    assert models_asked(gw) == [A, B]


@pytest.mark.parametrize("mode", MODES)
async def test_custom_trigger_types_and_predicates(gw, make_chain, mode):
    gw.enqueue(Fault(status=401), model=A)
    gw.enqueue(Fault(status=503), model=B)
    chain = make_chain(
        fallback_on=[HolySheepAuthenticationError, lambda e: "503" in str(e)]
    )
    answer = await call(chain, mode)
    assert answer.response_metadata["model_name"] == C


async def test_custom_trigger_set_replaces_the_default(gw, make_chain):
    gw.enqueue(Fault(status=503), model=A)
    with pytest.raises(HolySheepServerError):
        make_chain(fallback_on=[HolySheepRateLimitError]).invoke("hi")
    assert models_asked(gw) == [A]


# --------------------------------------------------------------- streaming
@pytest.mark.parametrize("mode", STREAMS)
@pytest.mark.parametrize(
    "reply",
    [
        Reply(error_after_chunks=0),  # an error event before any output
        Reply(cut_after_chunks=0),  # the connection drops before any output
        Reply(omit_finish_reason=True, omit_done=True, content=""),
    ],
    ids=["error-event", "cut", "truncated-empty"],
)
async def test_stream_fails_before_first_chunk_falls_over(gw, make_chain, mode, reply):
    gw.enqueue(reply, model=A)
    gw.enqueue(Reply(content="second model speaking"), model=B)
    answer = await call(make_chain(), mode)
    assert answer.content == "second model speaking"
    assert answer.response_metadata["model_name"] == B
    assert [a["model"] for a in answer.response_metadata["fallback_attempts"]] == [A]


@pytest.mark.parametrize("mode", STREAMS)
async def test_stream_fails_after_first_chunk_raises_without_splicing(
    gw, make_chain, mode
):
    gw.enqueue(Reply(content="one two three four", error_after_chunks=2), model=A)
    received = []
    with pytest.raises(HolySheepStreamError) as info:
        await collect(make_chain(), mode, received)
    text = "".join(c.content for c in received)
    assert text == "one two "  # only the first model's words, and no more
    assert info.value.partial_text == "one two "
    assert models_asked(gw) == [A]  # the second model was never asked


@pytest.mark.parametrize("mode", STREAMS)
async def test_stream_commits_on_a_tool_call_chunk(gw, make_chain, mode):
    gw.enqueue(Reply(tool_calls=[ToolCall("f", {"x": 1})], cut_after_chunks=1), model=A)
    with pytest.raises(HolySheepError):
        await call(make_chain(), mode)
    assert models_asked(gw) == [A]


async def test_stream_yields_the_first_chunk_only_after_commit(gw, make_chain):
    gw.enqueue(Fault(status=503), model=A)
    gw.enqueue(Reply(content="alpha beta gamma"), model=B)
    chunks = list(make_chain().stream("hi"))
    assert chunks[0].response_metadata["fallback_attempts"][0]["model"] == A
    assert "".join(c.content for c in chunks) == "alpha beta gamma"


# ---------------------------------------------------------------- retries
@pytest.mark.parametrize("mode", MODES)
async def test_members_make_no_sdk_retries(gw, mode):
    primary = ChatHolySheep(model=A, base_url=gw.base_url, api_key=KEY, max_retries=5)
    gw.enqueue(Fault(status=503, repeat=10), model=A)
    answer = await call(primary.with_model_fallbacks([B]), mode)
    assert answer.response_metadata["model_name"] == B
    assert models_asked(gw) == [A, B]


@pytest.mark.parametrize("mode", MODES)
async def test_retry_after_above_the_cap_moves_on_at_once(gw, make_chain, mode):
    gw.enqueue(Fault(status=429, headers={"Retry-After": "30"}), model=A)
    chain = make_chain(max_retries=3, max_retry_after=1.0)
    answer = await call(chain, mode)
    assert answer.response_metadata["model_name"] == B
    assert models_asked(gw) == [A, B]


@pytest.mark.parametrize("mode", MODES)
async def test_retry_after_within_the_cap_retries_the_same_member(gw, make_chain, mode):
    gw.enqueue(Fault(status=429, headers={"retry-after-ms": "5"}), model=A)
    chain = make_chain(max_retries=1, max_retry_after=1.0)
    answer = await call(chain, mode)
    assert answer.response_metadata["model_name"] == A
    assert [a["model"] for a in answer.response_metadata["fallback_attempts"]] == [A]
    assert models_asked(gw) == [A, A]


async def test_retry_budget_is_per_member(gw, make_chain):
    gw.enqueue(Fault(status=503, headers={"Retry-After": "0"}, repeat=2), model=A)
    gw.enqueue(Fault(status=503, headers={"Retry-After": "0"}, repeat=2), model=B)
    answer = make_chain(max_retries=1, circuit_breaker=None).invoke("hi")
    assert answer.response_metadata["model_name"] == C
    assert models_asked(gw) == [A, A, B, B, C]


async def test_model_not_found_is_not_retried_on_the_same_member(gw, make_chain):
    gw.strict_models = True
    answer = make_chain("nope", B, max_retries=2).invoke("hi")
    assert answer.response_metadata["model_name"] == B
    assert models_asked(gw) == ["nope", B]


# ------------------------------------------------------- response checks
@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_response_check_rejection_falls_over(gw, make_chain, mode):
    gw.enqueue(Reply(content=""), model=A)
    chain = make_chain(response_checks=[empty_content], allow_empty_answer=True)
    answer = await call(chain, mode)
    assert answer.response_metadata["model_name"] == B
    [attempt] = answer.response_metadata["fallback_attempts"]
    assert attempt["error_type"] == "HolySheepResponseRejectedError"
    assert "empty answer" in attempt["message"]


async def test_response_checks_rejecting_every_answer_raise_the_group(gw, make_chain):
    gw.set_default(Reply(content=""))
    with pytest.raises(HolySheepFallbackError) as info:
        make_chain(
            A, B, response_checks=[empty_content], allow_empty_answer=True
        ).invoke("hi")
    assert all(
        isinstance(e, HolySheepResponseRejectedError) for e in info.value.exceptions
    )
    assert info.value.exceptions[0].response.response_metadata["model_name"] == A


@pytest.mark.parametrize("mode", STREAMS)
async def test_response_checks_do_not_apply_to_streams(gw, make_chain, mode):
    gw.enqueue(Reply(content=""), model=A)
    chain = make_chain(response_checks=[empty_content], allow_empty_answer=True)
    answer = await call(chain, mode)
    assert answer.content == ""
    assert answer.response_metadata["model_name"] == A


# -------------------------------------------------------- circuit breaker
@pytest.mark.parametrize("mode", MODES)
async def test_breaker_opens_skips_half_opens_and_closes(gw, make_chain, mode):
    clock = _Clock()
    policy = CircuitBreakerPolicy(failure_threshold=2, cooldown=10, clock=clock)
    chain = make_chain(A, B, circuit_breaker=policy)
    gw.enqueue(Fault(status=503, repeat=2), model=A)

    # Two consecutive retryable failures open A's circuit.
    for _ in range(2):
        assert (await call(chain, mode)).response_metadata["model_name"] == B
    assert chain.circuit_states()[A].state is CircuitState.OPEN
    assert models_asked(gw) == [A, B, A, B]

    # While open, A is skipped without a request.
    answer = await call(chain, mode)
    assert answer.response_metadata["model_name"] == B
    [skip] = answer.response_metadata["fallback_attempts"]
    assert skip["error_type"] == "HolySheepCircuitOpenError"
    assert "next trial in 10.0 s" in skip["message"]
    assert models_asked(gw)[4:] == [B]

    # After the cooldown one trial goes to A; it succeeds and closes the circuit.
    clock.now += 10
    answer = await call(chain, mode)
    assert answer.response_metadata["model_name"] == A
    assert chain.circuit_states()[A].state is CircuitState.CLOSED
    assert models_asked(gw)[5:] == [A]


async def test_breaker_failed_trial_reopens_for_longer(gw, make_chain):
    clock = _Clock()
    policy = CircuitBreakerPolicy(failure_threshold=1, cooldown=10, clock=clock)
    chain = make_chain(A, B, circuit_breaker=policy)
    gw.enqueue(Fault(status=503, repeat=2), model=A)
    chain.invoke("hi")
    clock.now += 10
    chain.invoke("hi")  # the trial fails
    state = chain.circuit_states()[A]
    assert (state.state, state.retry_in, state.trips) == (CircuitState.OPEN, 20.0, 2)
    assert models_asked(gw) == [A, B, A, B]


@pytest.mark.parametrize("mode", ["ainvoke", "astream"])
async def test_breaker_cancelled_trial_lets_the_next_caller_try(gw, make_chain, mode):
    clock = _Clock()
    policy = CircuitBreakerPolicy(failure_threshold=1, cooldown=10, clock=clock)
    chain = make_chain(A, B, circuit_breaker=policy)
    gw.enqueue(Fault(status=503), Reply(delay_before_headers=2), model=A)
    await chain.ainvoke("hi")
    clock.now += 10
    with pytest.raises(TimeoutError):  # the caller gives up during the trial
        await asyncio.wait_for(call(chain, mode), timeout=0.3)
    assert chain.circuit_states()[A].state is CircuitState.OPEN
    answer = await call(chain, mode)  # the next caller gets the trial
    assert answer.response_metadata["model_name"] == A
    assert chain.circuit_states()[A].state is CircuitState.CLOSED


async def test_breaker_cooldown_comes_from_retry_after(gw, make_chain):
    policy = CircuitBreakerPolicy(failure_threshold=1, cooldown=30, clock=_Clock())
    gw.enqueue(Fault(status=429, headers={"Retry-After": "7"}), model=A)
    chain = make_chain(A, B, circuit_breaker=policy)
    chain.invoke("hi")
    assert chain.circuit_states()[A].retry_in == 7.0


async def test_breaker_ignores_non_retryable_errors(gw, make_chain):
    gw.strict_models = True
    chain = make_chain(
        "nope", B, circuit_breaker=CircuitBreakerPolicy(failure_threshold=1)
    )
    chain.invoke("hi")
    assert chain.circuit_states()["nope"].state is CircuitState.CLOSED


async def test_breaker_is_shared_by_chains_naming_the_same_model(gw, make_chain):
    policy = CircuitBreakerPolicy(failure_threshold=1, clock=_Clock())
    gw.enqueue(Fault(status=503), model=A)
    make_chain(A, B, circuit_breaker=policy).invoke("hi")
    other = ChatHolySheep(model=A, base_url=gw.base_url, api_key="cr_other_key_1")
    answer = other.with_model_fallbacks([C], circuit_breaker=policy).invoke("hi")
    assert answer.response_metadata["model_name"] == C
    assert models_asked(gw) == [A, B, C]


async def test_all_circuits_open_fails_fast_with_the_group(gw, make_chain):
    policy = CircuitBreakerPolicy(failure_threshold=1, clock=_Clock())
    chain = make_chain(A, B, circuit_breaker=policy)
    gw.enqueue(Fault(status=503), model=A)
    gw.enqueue(Fault(status=503), model=B)
    with pytest.raises(HolySheepFallbackError):
        chain.invoke("hi")
    with pytest.raises(HolySheepFallbackError) as info:
        chain.invoke("hi")
    assert all(isinstance(e, HolySheepCircuitOpenError) for e in info.value.exceptions)
    assert len(models_asked(gw)) == 2  # the second call sent nothing


def test_breaker_counts_every_failure_under_concurrent_calls(gw, make_chain):
    policy = CircuitBreakerPolicy(failure_threshold=8, cooldown=60)
    gw.set_default(Fault(status=503), model=A)
    chain = make_chain(A, B, circuit_breaker=policy)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: chain.invoke(f"q{i}"), range(48)))
    assert {a.response_metadata["model_name"] for a in answers} == {B}
    state = chain.circuit_states()[A]
    assert state.state is CircuitState.OPEN
    asked_a = models_asked(gw).count(A)
    assert 8 <= asked_a < 48  # once open, A was skipped
    assert state.consecutive_failures == asked_a  # each failure counted once


async def test_breaker_counts_every_failure_under_concurrent_async_calls(
    gw, make_chain
):
    policy = CircuitBreakerPolicy(failure_threshold=5, cooldown=60)
    gw.set_default(Fault(status=503), model=A)
    chain = make_chain(A, B, circuit_breaker=policy)
    answers = await asyncio.gather(*(chain.ainvoke(f"q{i}") for i in range(30)))
    assert {a.response_metadata["model_name"] for a in answers} == {B}
    state = chain.circuit_states()[A]
    assert state.state is CircuitState.OPEN
    assert state.consecutive_failures == models_asked(gw).count(A)


# ---------------------------------------------------------- batch & logging
@pytest.mark.parametrize("use_async", [False, True])
async def test_batch_falls_over_for_each_input(gw, make_chain, use_async):
    gw.set_default(Fault(status=503), model=A)
    chain = make_chain(circuit_breaker=None)
    inputs = ["a", "b", "c"]
    answers = await chain.abatch(inputs) if use_async else chain.batch(inputs)
    assert [a.content for a in answers] == [f"Offline reply to: {t}" for t in "abc"]
    assert [a.response_metadata["model_name"] for a in answers] == [B, B, B]


def test_each_fallback_logs_one_warning_without_the_key(gw, make_chain, caplog):
    gw.enqueue(Fault(status=503, message=f"bad {KEY}"), model=A)
    gw.enqueue(Fault(status=429), model=B)
    with caplog.at_level(logging.WARNING, logger="langchain_holysheep.fallback"):
        make_chain().invoke("hi")
    records = [r for r in caplog.records if r.name == "langchain_holysheep.fallback"]
    assert [r.levelno for r in records] == [logging.WARNING] * 2
    assert records[0].getMessage() == (
        f"Model {A} failed (HolySheepServerError); falling over to {B}."
    )
    assert records[1].getMessage() == (
        f"Model {B} failed (HolySheepRateLimitError); falling over to {C}."
    )
    assert KEY not in caplog.text


# -------------------------------------------------------------- members
def test_lazily_built_members_share_one_connection_pool(gw, make_chain):
    chain = make_chain(A, B, C)
    gw.enqueue(Fault(status=503), model=A)
    chain.invoke("hi")
    members = [m.model for m in chain._members()]
    pools = {id(get_sync_client(m._client_config(None))) for m in members}
    assert len(pools) == 1
    auth = {r.headers["authorization"] for r in gw.requests}
    assert auth == {f"Bearer {KEY}"}


def test_members_given_as_ids_copy_the_primary(gw):
    primary = ChatHolySheep(
        model=A, base_url=gw.base_url, api_key=KEY, temperature=0.25, max_tokens=33
    )
    gw.enqueue(Fault(status=503), model=A)
    primary.with_model_fallbacks([B]).invoke("hi")
    body = gw.last_request.body
    assert (body["model"], body["temperature"], body["max_tokens"]) == (B, 0.25, 33)


@pytest.mark.parametrize("mode", MODES)
async def test_cross_provider_member(gw, make_chain, mode):
    gw.set_default(Fault(status=503), model=A)
    chain = ChatHolySheepFallback(
        models=[
            ChatHolySheep(model=A, base_url=gw.base_url, api_key=KEY),
            FakeListChatModel(responses=["from another provider"]),
        ]
    )
    answer = await call(chain, mode)
    assert answer.content == "from another provider"
    assert answer.response_metadata["model_name"] == "FakeListChatModel"


# ------------------------------------------------- tools, structured, agents


@pytest.mark.parametrize("mode", MODES)
async def test_tools_survive_the_chain(gw, make_chain, mode):
    gw.enqueue(Fault(status=503), model=A)
    gw.enqueue(Reply(tool_calls=[ToolCall("multiply", {"a": 6, "b": 7})]), model=B)
    bound = make_chain().bind_tools([multiply], tool_choice="multiply")
    answer = await call(bound, mode)
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [
        ("multiply", {"a": 6, "b": 7})
    ]
    assert answer.response_metadata["model_name"] == B
    for request in gw.requests:  # each member got the tools, in its own form
        assert request.body["tools"][0]["function"]["name"] == "multiply"
        assert request.body["tool_choice"] == {
            "type": "function",
            "function": {"name": "multiply"},
        }


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_structured_output_survives_the_chain_with_each_members_method(
    gw, make_chain, mode
):
    gw.enqueue(Fault(status=503), model=A)
    gw.enqueue(
        Reply(tool_calls=[ToolCall("Person", {"name": "Ann", "age": 30})]), model=C
    )
    structured = make_chain(A, C).with_structured_output(Person)
    person = (
        structured.invoke("Ann is 30")
        if mode == "invoke"
        else await structured.ainvoke("Ann is 30")
    )
    assert person == Person(name="Ann", age=30)
    first, second = gw.requests
    assert first.body["response_format"]["type"] == "json_schema"  # mistral's choice
    assert "response_format" not in second.body  # deepseek: function calling
    assert second.body["tools"][0]["function"]["name"] == "Person"


async def test_structured_output_all_failed_raises_the_group(gw, make_chain):
    gw.set_default(Fault(status=503))
    with pytest.raises(HolySheepFallbackError) as info:
        await make_chain(A, B).with_structured_output(Person).ainvoke("x")
    assert [a["model"] for a in info.value.attempts] == [A, B]


def agent_responder(body):
    """Call multiply(6, 7), then answer with the result."""
    results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
    if not results:
        return Reply(tool_calls=[ToolCall("multiply", {"a": 6, "b": 7})])
    return Reply(content=f"The answer is {results[-1]}.")


@pytest.mark.parametrize("use_async", [False, True])
async def test_create_agent_with_the_chain(gw, make_chain, use_async):
    gw.set_default(Fault(status=503), model=A)
    gw.set_responder(agent_responder, model=B)
    agent = create_agent(make_chain(A, B, circuit_breaker=None), [multiply, add])
    question = {"messages": [("user", "What is 6 * 7?")]}
    result = await agent.ainvoke(question) if use_async else agent.invoke(question)
    messages = result["messages"]
    assert messages[-1].content == "The answer is 42."
    assert [m.content for m in messages if isinstance(m, ToolMessage)] == ["42"]
    answers = [m for m in messages if isinstance(m, AIMessage)]
    assert {m.response_metadata["model_name"] for m in answers} == {B}
    assert models_asked(gw) == [A, B, A, B]


def test_create_agent_stream_mode_messages_yields_tokens_once(gw, make_chain):
    gw.enqueue(Fault(status=503), model=A)
    gw.set_responder(agent_responder, model=B)
    gw.set_responder(agent_responder, model=A)
    agent = create_agent(make_chain(A, B), [multiply])
    chunks = [
        chunk
        for chunk, meta in agent.stream(
            {"messages": [("user", "6*7?")]}, stream_mode="messages"
        )
        if isinstance(chunk, AIMessageChunk) and meta["langgraph_node"] == "model"
    ]
    text = "".join(c.content for c in chunks if isinstance(c.content, str))
    assert text == "The answer is 42."


# ------------------------------------------------------------------- docs
DOC = Path(__file__).parents[2] / "docs" / "fallbacks.md"


def test_docs_fallbacks_examples_run(holysheep_env, capsys):
    """Every python example in docs/fallbacks.md runs, in order."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.DOTALL)
    assert len(blocks) >= 8
    namespace: dict = {"__name__": "docs_fallbacks"}
    for block in blocks:
        exec(compile(textwrap.dedent(block), str(DOC), "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out
    assert "served by gemini-2.5-flash" in printed
    assert "mistral-small-2603 503\ngemini-2.5-flash 503" in printed
    assert "['parsed', 'parsing_error', 'raw']" in printed
    assert "Fallback member 'claude-sonnet-4.5' cannot take top_p (" in printed
    assert "gpt-4.1\nHolySheepUnsupportedInputError\n" in printed
    assert "128000\nFalse\nOffline reply to: Say hi.\n" in printed


def test_usage_tracker_counts_the_failed_members_of_a_chain(gw):
    """Regression: the tracker saw only the chain's run, so a 503 went uncounted."""
    from langchain_holysheep.callbacks import holysheep_usage

    chain = ChatHolySheep(
        base_url=gw.base_url, api_key="cr_tracker_key_123456", max_retries=0
    ).with_model_fallbacks(["gemini-2.5-flash"], circuit_breaker=False)
    gw.enqueue(Fault(status=503), model="mistral-small-2603")
    with holysheep_usage() as usage:
        reply = chain.invoke("hi")
    summary = usage.snapshot()
    assert reply.response_metadata["model_name"] == "gemini-2.5-flash"
    assert summary.by_model["mistral-small-2603"].errors == 1
    assert summary.by_model["gemini-2.5-flash"].requests == 1
    assert summary.by_model["gemini-2.5-flash"].errors == 0
    assert summary.requests == 2
    assert summary.errors == 1
