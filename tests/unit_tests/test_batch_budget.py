"""The in-process budget and make_budget's checks (no socket)."""

import asyncio
import random
import sys
import threading
from decimal import Decimal

import pytest
from pydantic import SecretStr

from langchain_holysheep.batch._budget import (
    MAX_BUDGET_NANO,
    LocalBudget,
    budget_key,
    make_budget,
)
from langchain_holysheep.batch._format import BatchInputError


async def test_concurrent_reservations_never_pass_the_limit():
    budget = LocalBudget(1_000)
    rng = random.Random(7)  # noqa: S311 (test data, not secrets)
    amounts = [rng.randint(1, 90) for _ in range(300)]
    granted = []
    peak = 0

    async def one(amount):
        nonlocal peak
        await asyncio.sleep(0)
        if await budget.reserve(amount):
            granted.append(amount)
            peak = max(peak, await budget.reserved_nano() + await budget.spent_nano())
            await asyncio.sleep(0)
            await budget.settle(amount, amount // 2)

    await asyncio.gather(*(one(a) for a in amounts))
    assert granted
    assert peak <= 1_000
    assert await budget.spent_nano() == sum(a // 2 for a in granted)
    assert await budget.spent_nano() <= 1_000
    assert await budget.reserved_nano() == 0


def test_reservations_from_many_threads_never_pass_the_limit():
    budget = LocalBudget(10_000)
    granted = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker():
        start.wait()
        for _ in range(500):
            if asyncio.run(budget.reserve(7)):
                with lock:
                    granted.append(7)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reserved = asyncio.run(budget.reserved_nano())
    assert sum(granted) == reserved
    assert reserved == 10_000 // 7 * 7  # every one that fit, no more


async def test_a_reservation_that_does_not_fit_reserves_nothing():
    budget = LocalBudget(100)
    assert await budget.reserve(60)
    assert not await budget.reserve(41)
    assert await budget.reserved_nano() == 60
    assert await budget.reserve(40)
    assert not await budget.reserve(1)
    assert await budget.reserve(0)


async def test_settling_down_frees_the_rest_of_the_reservation():
    budget = LocalBudget(100)
    assert await budget.reserve(80)
    await budget.settle(80, 30)
    assert await budget.spent_nano() == 30
    assert await budget.reserved_nano() == 0
    assert await budget.reserve(70)
    assert not await budget.reserve(1)


async def test_settling_up_counts_what_was_spent_and_stops_sooner():
    budget = LocalBudget(100)
    assert await budget.reserve(20)
    await budget.settle(20, 50)  # cost more than its worst case
    assert await budget.spent_nano() == 50
    assert await budget.reserved_nano() == 0
    assert not await budget.reserve(51)
    assert await budget.reserve(50)


async def test_settling_with_zero_releases_the_reservation():
    budget = LocalBudget(100)
    assert await budget.reserve(100)
    assert not await budget.reserve(1)
    await budget.settle(100, 0)
    assert await budget.spent_nano() == 0
    assert await budget.reserved_nano() == 0
    assert await budget.reserve(100)


@pytest.mark.parametrize("amount", [-1, 1.5, True, "3", None])
async def test_amounts_must_be_whole_nano_dollars(amount):
    budget = LocalBudget(100)
    with pytest.raises(ValueError, match="whole nano-dollars"):
        await budget.reserve(amount)
    with pytest.raises(ValueError, match="whole nano-dollars"):
        await budget.settle(0, amount)


@pytest.mark.parametrize("limit", [0, -5, MAX_BUDGET_NANO + 1, 2.5, True])
def test_the_limit_must_be_whole_nano_dollars_above_zero(limit):
    with pytest.raises(BatchInputError, match="--budget-usd"):
        LocalBudget(limit)


def test_make_budget_without_a_budget_is_none():
    assert make_budget(None, redis_url=None, namespace="batch", api_key="k") is None


def test_make_budget_rounds_the_limit_down():
    budget = make_budget(
        Decimal("0.0000000019"), redis_url=None, namespace="batch", api_key=None
    )
    assert isinstance(budget, LocalBudget)
    assert budget.limit_nano == 1
    budget = make_budget(Decimal("2.5"), redis_url=None, namespace="b", api_key=None)
    assert budget is not None
    assert budget.limit_nano == 2_500_000_000


@pytest.mark.parametrize(
    "usd", [Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity"), "x", True]
)
def test_make_budget_refuses_a_budget_that_is_not_above_zero(usd):
    with pytest.raises(BatchInputError, match="budget"):
        make_budget(usd, redis_url=None, namespace="batch", api_key=None)


def test_make_budget_refuses_a_budget_too_small_or_too_large():
    with pytest.raises(BatchInputError, match="out of range"):
        make_budget(Decimal("1e-10"), redis_url=None, namespace="b", api_key=None)
    with pytest.raises(BatchInputError, match="out of range"):
        make_budget(Decimal("1e7"), redis_url=None, namespace="b", api_key=None)


def test_make_budget_refuses_a_url_that_is_not_redis_masking_its_password():
    with pytest.raises(BatchInputError, match="not a Redis URL") as caught:
        make_budget(
            Decimal(1),
            redis_url="http://user:hunter2secret@127.0.0.1:6379",
            namespace="batch",
            api_key="k",
        )
    assert "hunter2secret" not in str(caught.value)


def test_make_budget_refuses_a_malformed_redis_url_before_connecting():
    with pytest.raises(BatchInputError, match="malformed"):
        make_budget(
            Decimal(1),
            redis_url="redis://127.0.0.1:notaport/0",
            namespace="batch",
            api_key="k",
        )


def test_make_budget_refuses_an_empty_namespace():
    with pytest.raises(BatchInputError, match="namespace"):
        make_budget(
            Decimal(1), redis_url="redis://127.0.0.1:1/0", namespace=" ", api_key="k"
        )


def test_the_budget_key_holds_a_hash_of_the_api_key_never_the_key(monkeypatch):
    key = budget_key("shard-run", "cr_budget_secret_key_0042")
    assert key.startswith("hs:{")
    assert key.endswith("}:shard-run:budget")
    assert "cr_budget_secret_key_0042" not in key
    assert key != budget_key("shard-run", "another-key")
    assert key != budget_key("other-run", "cr_budget_secret_key_0042")
    assert budget_key("shard-run", SecretStr("cr_budget_secret_key_0042")) == key
    monkeypatch.setenv("HOLYSHEEP_API_KEY", "cr_budget_secret_key_0042")
    assert budget_key("shard-run", None) == key


def test_make_budget_without_redis_py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(BatchInputError, match=r"langchain-holysheep\[redis\]"):
        make_budget(
            Decimal(1), redis_url="redis://127.0.0.1:1/0", namespace="b", api_key="k"
        )
