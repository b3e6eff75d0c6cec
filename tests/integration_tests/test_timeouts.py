"""Time bounds: a per-call ``timeout``, and ``total_timeout`` for a whole call.

Real HTTP against the offline gateway; the gateway stalls or trickles, the
bounds are short, so nothing here can hang the suite. A stalled answer comes
(if ever) long after the bound: on a loaded machine a client thread can be
held off for a second or more, and would then find a prompt answer waiting.
"""

from __future__ import annotations

import pickle
import time

import httpx2
import pytest

from langchain_holysheep import _deadline
from langchain_holysheep.errors import (
    HolySheepInputError,
    HolySheepTimeoutError,
    HolySheepTotalTimeoutError,
)
from langchain_holysheep.fallback import ChatHolySheepFallback
from langchain_holysheep.ratelimit import HolySheepRateLimiter
from langchain_holysheep.testing import Fault, Reply
from tests.modes import INVOKES, MODES, STREAMS, call

WORDS = " ".join(f"w{i}" for i in range(40))
STALL = 6.0  # seconds before a stalled answer comes, far past every bound


async def text_of(model, mode, **kwargs):
    return (await call(model, mode, "hi", **kwargs)).text


async def timed_failure(model, mode, **kwargs):
    start = time.monotonic()
    with pytest.raises(HolySheepTimeoutError) as caught:
        await text_of(model, mode, **kwargs)
    return caught.value, time.monotonic() - start


# ------------------------------------------------------------ per-call timeout
@pytest.mark.parametrize("mode", MODES)
async def test_per_call_timeout_bounds_that_request(gw, make_model, mode):
    """Regression: ``invoke(x, timeout=0.3)`` went into the JSON body, unapplied."""
    gw.enqueue(Reply(content="late", delay_before_headers=STALL))
    error, elapsed = await timed_failure(make_model(), mode, timeout=0.3)
    assert elapsed < 3.0
    assert not isinstance(error, HolySheepTotalTimeoutError)
    assert "timeout" not in gw.last_request.body


@pytest.mark.parametrize("mode", MODES)
async def test_per_call_timeout_is_never_sent(gw, make_model, mode):
    text = await text_of(make_model(timeout=0.2), mode, timeout=5, total_timeout=5)
    assert text == "Offline reply to: hi"
    body = gw.last_request.body
    assert "timeout" not in body
    assert "total_timeout" not in body


@pytest.mark.parametrize("bad", [0, -1, "5", True, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["timeout", "total_timeout"])
def test_a_bad_per_call_bound_is_refused_before_sending(gw, model, name, bad):
    with pytest.raises(HolySheepInputError, match=f"{name} must be a positive"):
        model.invoke("hi", **{name: bad})
    assert gw.requests == []


def test_total_timeout_field_is_validated(make_model):
    with pytest.raises(ValueError, match="total_timeout"):
        make_model(total_timeout=0)


# ---------------------------------------------------------------- total timeout
@pytest.mark.parametrize("mode", STREAMS)
async def test_trickling_stream_ends_at_total_timeout_keeping_the_text(
    gw, make_model, mode
):
    """Each chunk comes well within ``timeout``; the whole stream would not."""
    gw.enqueue(Reply(content=WORDS, chunk_delay=0.1))
    model = make_model(timeout=2.0, total_timeout=0.6)
    error, elapsed = await timed_failure(model, mode)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert elapsed < 2.5  # the whole stream takes 4 s
    assert error.total_timeout == 0.6
    assert error.is_retryable
    assert "total_timeout=0.6 s" in str(error)
    assert error.partial_text
    assert WORDS.startswith(error.partial_text)
    assert len(error.partial_text) < len(WORDS)


@pytest.mark.parametrize("mode", INVOKES)
async def test_total_timeout_bounds_a_response_that_is_slow_to_come(
    gw, make_model, mode
):
    gw.enqueue(Reply(content="late", delay_before_headers=STALL))
    error, elapsed = await timed_failure(make_model(total_timeout=0.4), mode)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert elapsed < 3.0


@pytest.mark.parametrize("mode", MODES)
async def test_per_call_total_timeout_overrides_the_field(gw, make_model, mode):
    gw.set_default(Reply(content=WORDS, chunk_delay=0.05, delay_before_headers=1.2))
    error, _ = await timed_failure(make_model(), mode, total_timeout=0.3)
    assert isinstance(error, HolySheepTotalTimeoutError)
    patient = make_model(total_timeout=0.3)
    assert await text_of(patient, mode, total_timeout=20) == WORDS


@pytest.mark.parametrize("mode", STREAMS)
async def test_a_stalled_chunk_is_cut_at_the_deadline_not_after_it(
    gw, make_model, mode
):
    """The wait for a chunk ends at the deadline, not a whole ``timeout`` later.

    Chunks at 0 s (role), 1.5 s ("one "), 3.0 s ("two "); the deadline is at
    2.0 s. Bounding each wait by ``min(timeout, total_timeout)`` only would
    wait on until the next chunk, at 3.0 s.
    """
    gw.enqueue(Reply(content="one two three", chunk_delay=1.5))
    model = make_model(timeout=10.0, total_timeout=2.0)
    error, elapsed = await timed_failure(model, mode)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert elapsed < 2.7
    assert error.partial_text == "one "


@pytest.mark.parametrize("mode", INVOKES)
async def test_no_retry_wait_runs_past_the_deadline(gw, make_model, mode):
    """The SDK would sleep ``Retry-After`` (2 s), then retry; the call ends now."""
    gw.enqueue(Fault(status=503, headers={"Retry-After": "3"}, repeat=3))
    model = make_model(max_retries=2, total_timeout=1.0)
    error, elapsed = await timed_failure(model, mode)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert elapsed < 2.0  # given up at once: the wait alone would not fit
    assert len(gw.requests) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_retries_that_fit_still_run(gw, make_model, mode):
    gw.enqueue(Fault(status=503, headers={"Retry-After": "0.05"}))
    model = make_model(max_retries=2, total_timeout=5.0)
    assert await text_of(model, mode) == "Offline reply to: hi"
    assert len(gw.requests) == 2


def test_total_timeout_with_your_own_http_client(gw, make_model):
    """A user's client keeps its sockets; the deadline is checked per chunk."""
    gw.enqueue(Reply(content=WORDS, chunk_delay=0.1))
    with httpx2.Client() as client:
        model = make_model(http_client=client, timeout=2.0, total_timeout=0.5)
        error, elapsed = timed_failure_sync(model)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert elapsed < 2.5
    assert WORDS.startswith(error.partial_text)


def timed_failure_sync(model):
    start = time.monotonic()
    with pytest.raises(HolySheepTimeoutError) as caught:
        list(model.stream("hi"))
    return caught.value, time.monotonic() - start


@pytest.mark.parametrize("mode", STREAMS)
async def test_the_deadline_is_not_seen_by_the_code_consuming_a_stream(
    gw, make_model, mode
):
    model = make_model(total_timeout=10)
    if mode == "stream":
        seen = [_deadline.current() for _ in model.stream("hi")]
    else:
        seen = [_deadline.current() async for _ in model.astream("hi")]
    assert seen
    assert set(seen) == {None}


def test_total_timeout_error_pickles(gw, make_model):
    gw.enqueue(Reply(content=WORDS, chunk_delay=0.1))
    error, _ = timed_failure_sync(make_model(total_timeout=0.3))
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own bytes)
    assert isinstance(copy, HolySheepTotalTimeoutError)
    assert copy.total_timeout == 0.3
    assert copy.partial_text == error.partial_text
    assert str(copy) == str(error)


# ------------------------------------------------------ the rate limiter's wait
def one_a_minute():
    # The first request goes at once; the next slot is 60 s later.
    return HolySheepRateLimiter(requests_per_minute=1, redis_url=None)


@pytest.mark.parametrize("mode", MODES)
async def test_a_limiter_slot_past_the_deadline_is_not_waited_for(gw, make_model, mode):
    model = make_model(rate_limiter=one_a_minute(), total_timeout=10)
    assert await text_of(model, mode)
    start = time.monotonic()
    with pytest.raises(HolySheepTotalTimeoutError) as caught:
        await text_of(model, mode)
    error = caught.value
    # Refused at once, with the wait that would have been needed: not after 10 s.
    assert time.monotonic() - start < 5
    assert error.total_timeout == 10
    assert 55 < error.limiter_wait <= 60
    assert "rate limiter's next free slot" in str(error)
    assert "was not sent" in str(error)
    assert len(gw.requests) == 1  # the second request never went out
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own bytes)
    assert copy.limiter_wait == error.limiter_wait
    assert str(copy) == str(error)


@pytest.mark.parametrize("mode", MODES)
async def test_a_limiter_wait_that_fits_is_waited_and_counts_against_it(
    gw, make_model, mode
):
    # 120 a minute: the second slot is 0.5 s after the first.
    limiter = HolySheepRateLimiter(requests_per_minute=120, redis_url=None)
    model = make_model(rate_limiter=limiter, total_timeout=5)
    assert await text_of(model, mode)
    start = time.monotonic()
    assert await text_of(model, mode)
    assert time.monotonic() - start >= 0.4  # the limiter held it
    assert len(gw.requests) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_without_total_timeout_the_limiter_waits_as_long_as_it_takes(
    gw, make_model, mode
):
    limiter = HolySheepRateLimiter(requests_per_minute=120, redis_url=None)
    model = make_model(rate_limiter=limiter)
    assert await text_of(model, mode)
    assert await text_of(model, mode)
    assert len(gw.requests) == 2


# ------------------------------------------------------ the fallback chain
A, B = "mistral-small-2603", "gemini-2.5-flash"
CHAIN_KEY = "cr_timeouts_chain_key_0123456"


@pytest.fixture
def make_chain(gw):
    def make(**kwargs):
        kwargs.setdefault("models", [A, B])
        return ChatHolySheepFallback(base_url=gw.base_url, api_key=CHAIN_KEY, **kwargs)

    return make


def chat_models_asked(gw):
    return [r.model for r in gw.requests if r.path.endswith("/chat/completions")]


@pytest.mark.parametrize("mode", MODES)
async def test_chain_total_timeout_ends_the_call_without_falling_over(
    gw, make_chain, mode
):
    """Past the deadline the chain stops: trying the next member cannot help."""
    gw.enqueue(Reply(content="late", delay_before_headers=STALL), model=A)
    error, elapsed = await timed_failure(make_chain(total_timeout=0.5), mode)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert error.total_timeout == 0.5
    assert elapsed < 3.0
    assert chat_models_asked(gw) == [A]
    assert any(A in note for note in error.__notes__)


@pytest.mark.parametrize("mode", STREAMS)
async def test_chain_total_timeout_keeps_the_committed_members_text(
    gw, make_chain, mode
):
    gw.enqueue(Fault(status=503), model=A)
    gw.enqueue(Reply(content=WORDS, chunk_delay=0.1), model=B)
    chain = make_chain(total_timeout=0.8)
    error, elapsed = await timed_failure(chain, mode)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert error.total_timeout == 0.8
    assert elapsed < 3.0
    assert error.partial_text
    assert WORDS.startswith(error.partial_text)
    assert chat_models_asked(gw) == [A, B]


@pytest.mark.parametrize("mode", INVOKES)
async def test_chain_does_not_wait_for_a_retry_past_its_deadline(gw, make_chain, mode):
    gw.enqueue(Fault(status=429, headers={"Retry-After": "1.8"}), model=A)
    chain = make_chain(models=[A], max_retries=2, total_timeout=1.0)
    error, elapsed = await timed_failure(chain, mode)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert elapsed < 1.5
    assert chat_models_asked(gw) == [A]


@pytest.mark.parametrize("mode", MODES)
async def test_chain_within_its_total_timeout_falls_over_as_usual(gw, make_chain, mode):
    gw.enqueue(Fault(status=503), model=A)
    answer = await call(make_chain(total_timeout=10), mode, "hi")
    assert answer.response_metadata["model_name"] == B
    body = gw.last_request.body
    assert "total_timeout" not in body
    assert "timeout" not in body


@pytest.mark.parametrize("mode", MODES)
async def test_chain_per_call_total_timeout_overrides_its_field(gw, make_chain, mode):
    gw.set_default(Reply(content="late", delay_before_headers=1.2))
    error, _ = await timed_failure(make_chain(), mode, total_timeout=0.3)
    assert isinstance(error, HolySheepTotalTimeoutError)
    assert error.total_timeout == 0.3
    answer = await call(make_chain(total_timeout=0.3), mode, "hi", total_timeout=10)
    assert answer.text == "late"


def test_chain_member_cache_keys_ignore_the_time_left(gw, make_chain):
    """The time left differs per call; a member's cache key must not."""
    chain = make_chain(total_timeout=10)
    member = chain._members()[0].model
    one = member._get_llm_string(total_timeout=9.5, temperature=0)
    two = member._get_llm_string(total_timeout=3.1, timeout=2, temperature=0)
    assert one == two
    assert one != member._get_llm_string(temperature=1)
