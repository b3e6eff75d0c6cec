"""A call's deadline (``total_timeout``), and the fallback walk that honours it."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.exceptions import ModelRateLimitError
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._deadline import Deadline, current, within
from langchain_holysheep.errors import HolySheepTotalTimeoutError
from langchain_holysheep.fallback._member import Member
from tests.unit_tests.test_fallback_walk import _Settings

KEY = "cr_deadline_unit_key_0123456"


def test_a_deadline_counts_down_and_can_be_tripped():
    deadline = Deadline(60)
    assert 59 < deadline.left() <= 60
    assert not deadline.expired
    deadline.trip()
    assert deadline.expired
    assert Deadline(-1).expired
    assert "seconds=60" in repr(Deadline(60))


def test_within_sets_the_deadline_for_the_block_only():
    outer, inner = Deadline(10), Deadline(5)
    assert current() is None
    with within(outer):
        assert current() is outer
        with within(inner):
            assert current() is inner
        with within(None):  # a call without a deadline changes nothing
            assert current() is outer
        assert current() is outer
    assert current() is None


async def test_within_is_per_task():
    seen = {}

    async def task(name, deadline):
        with within(deadline):
            await asyncio.sleep(0.01)
            seen[name] = current()

    one, two = Deadline(10), Deadline(20)
    await asyncio.gather(task("one", one), task("two", two))
    assert seen == {"one": one, "two": two}


# -------------------------------------------------------------- the walk
def _walk(*members, seconds, **settings):
    from langchain_holysheep.fallback._walk import Walk

    return Walk(
        settings=_Settings(**settings),
        members=list(members),
        deadline=Deadline(seconds),
    )


def _member(name, *, holysheep=False, total=None):
    model = (
        ChatHolySheep(model=name, api_key=KEY, total_timeout=total)
        if holysheep
        else FakeListChatModel(responses=["x"])
    )
    return Member(name=name, model=model, breaker=None, takes_total_timeout=holysheep)


def test_a_holysheep_attempt_gets_the_time_left():
    walk = _walk(_member("a", holysheep=True), seconds=30)
    member = next(iter(walk))
    kwargs = walk.bounded(member, {"temperature": 0})
    assert kwargs["temperature"] == 0
    assert 29 < kwargs["total_timeout"] <= 30


def test_a_members_own_shorter_bound_stays():
    walk = _walk(_member("a", holysheep=True, total=5), seconds=30)
    member = next(iter(walk))
    assert "total_timeout" not in walk.bounded(member, {})


def test_other_members_get_no_total_timeout():
    walk = _walk(_member("a"), seconds=30)
    member = next(iter(walk))
    assert walk.bounded(member, {"x": 1}) == {"x": 1}


def _busy_walk(walk):
    for _ in walk:
        with walk.attempt():
            raise ModelRateLimitError("busy")


async def _abusy_walk(walk):
    async for _ in walk:
        with walk.attempt():
            raise ModelRateLimitError("busy")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_retry_that_would_end_past_the_deadline_ends_the_walk(mode):
    # The back-off before the retry is 2-4 s; only 1 s is left.
    walk = _walk(
        _member("a"),
        _member("b"),
        seconds=1.0,
        max_retries=1,
        retry_backoff=4.0,
        max_retry_after=5.0,
    )
    start = time.monotonic()
    with pytest.raises(HolySheepTotalTimeoutError) as caught:
        await (
            _abusy_walk(walk)
            if mode == "async"
            else asyncio.to_thread(_busy_walk, walk)
        )
    assert time.monotonic() - start < 0.5  # not seconds of waiting
    assert caught.value.total_timeout == 1.0
    assert caught.value.request is None
    assert isinstance(caught.value.__cause__, ModelRateLimitError)
    assert any("a: " in note for note in caught.value.__notes__)


def _slow_and_busy(walk, tried):
    for member in walk:
        tried.append(member.name)
        with walk.attempt():
            time.sleep(0.06)
            raise ModelRateLimitError("slow and busy")


def test_a_failure_past_the_deadline_tries_no_other_member():
    walk = _walk(_member("a"), _member("b"), seconds=0.05)
    tried = []
    with pytest.raises(HolySheepTotalTimeoutError):
        _slow_and_busy(walk, tried)
    assert tried == ["a"]
