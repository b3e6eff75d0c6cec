"""The shared batch budget on a real Redis, across real processes.

Each test keeps to its own namespace on the shared Redis (127.0.0.1:6379) and
deletes its keys; the tests that count server-wide statistics or stop the
server run a private ``redis-server``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from decimal import Decimal

import pytest

from langchain_holysheep.batch._budget import (
    BudgetUnavailableError,
    RedisBudget,
    budget_key,
    make_budget,
)
from tests.redis_support import (
    SHARED_REDIS_URL,
    PrivateRedis,
    client,
    closed_port_url,
    namespace_on_shared_redis,
)

KEY = "cr_batch_budget_secret_key_0042"
LIMIT = 2_000_000
MAX_RESERVATION = 5_000


@pytest.fixture
def namespace():
    with namespace_on_shared_redis() as name:
        yield name


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


def spend_until_refused(url, key, seed, start, results):
    """A worker process: 8 tasks reserve and settle until the budget refuses."""

    async def task(budget, rng):
        spent = granted = refusals = 0
        while refusals < 30:
            worst = rng.randint(1, MAX_RESERVATION)
            if await budget.reserve(worst):
                refusals = 0
                await asyncio.sleep(0)  # others reserve while this one is out
                actual = rng.randint(0, worst)
                await budget.settle(worst, actual)
                spent += actual
                granted += 1
            else:
                refusals += 1
        return spent, granted

    async def run():
        budget = RedisBudget(url, key=key, limit_nano=LIMIT)
        rngs = [random.Random(seed * 100 + i) for i in range(8)]  # noqa: S311
        start.wait(60)
        done = await asyncio.gather(*(task(budget, rng) for rng in rngs))
        return sum(s for s, _ in done), sum(g for _, g in done)

    results.put(asyncio.run(run()))


def test_two_processes_on_one_budget_never_spend_past_it(namespace):
    key = budget_key(namespace, KEY)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(
            target=spend_until_refused,
            args=(SHARED_REDIS_URL, key, seed, start, results),
        )
        for seed in (1, 2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    try:
        outcomes = [results.get(timeout=180) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers)
    stored = {k.decode(): int(v) for k, v in client().hgetall(key).items()}
    spent = sum(s for s, _ in outcomes)
    assert all(granted > 0 for _, granted in outcomes)  # both took part
    assert stored == {"spent": spent, "reserved": 0}  # no step was lost
    assert spent <= LIMIT
    assert spent > LIMIT - 16 * MAX_RESERVATION  # they ran the budget out


async def test_the_budget_key_expires_and_each_step_refreshes_it(namespace):
    budget = RedisBudget(
        SHARED_REDIS_URL, key=budget_key(namespace, KEY), limit_nano=1000, ttl=120
    )
    assert await budget.reserve(300)
    redis = client()
    first = redis.pttl(budget.key)
    assert 0 < first <= 120_000
    redis.pexpire(budget.key, 5_000)
    await budget.settle(300, 100)
    assert 5_000 < redis.pttl(budget.key) <= 120_000
    redis.pexpire(budget.key, 5_000)
    assert await budget.spent_nano() == 100
    assert 5_000 < redis.pttl(budget.key) <= 120_000


async def test_a_refused_reservation_changes_nothing_and_settling_releases(namespace):
    budget = RedisBudget(
        SHARED_REDIS_URL, key=budget_key(namespace, KEY), limit_nano=1000
    )
    assert await budget.reserve(700)
    assert not await budget.reserve(301)
    assert await budget.reserved_nano() == 700
    await budget.settle(700, 0)  # nothing billed: the reservation is released
    assert await budget.reserved_nano() == 0
    assert await budget.spent_nano() == 0
    assert await budget.reserve(1000)
    await budget.settle(1000, 1200)  # billed above its worst case: still counted
    assert await budget.spent_nano() == 1200
    assert not await budget.reserve(1)


async def test_redis_holds_no_api_key_text(namespace):
    budget = make_budget(
        Decimal("0.5"), redis_url=SHARED_REDIS_URL, namespace=namespace, api_key=KEY
    )
    assert isinstance(budget, RedisBudget)
    assert KEY not in repr(budget)
    assert await budget.reserve(1_000)
    await budget.settle(1_000, 10)
    redis = client()
    ours = list(redis.scan_iter(match=f"hs:*:{namespace}:*", count=500))
    assert [k.decode() for k in ours] == [budget.key]
    for name in redis.scan_iter(count=1000):
        assert KEY.encode() not in name
    for field, value in redis.hgetall(budget.key).items():
        assert KEY.encode() not in field
        assert KEY.encode() not in value


def test_an_unreachable_redis_refuses_to_start_and_says_what_to_do():
    url = closed_port_url().replace("redis://", "redis://:hunter2secret@")
    with pytest.raises(BudgetUnavailableError) as caught:
        make_budget(Decimal(1), redis_url=url, namespace="batch", api_key=KEY)
    text = str(caught.value)
    assert "cannot be reached" in text
    assert "the run does not start" in text
    assert "Start Redis or fix --redis-url" in text
    assert "run the same command again" in text
    assert "leave out --redis-url" in text
    assert "hunter2secret" not in text
    assert KEY not in text


async def test_redis_going_away_mid_run_stops_sending(private_redis):
    budget = RedisBudget(private_redis.url, key=budget_key("run", KEY), limit_nano=100)
    assert await budget.reserve(10)
    private_redis.stop()
    with pytest.raises(BudgetUnavailableError, match="stops sending"):
        await budget.reserve(10)
    with pytest.raises(BudgetUnavailableError, match="Start Redis"):
        await budget.settle(10, 5)


async def test_each_step_is_one_script_call(private_redis):
    budget = make_budget(
        Decimal("0.000001"),
        redis_url=private_redis.url,
        namespace="run",
        api_key=KEY,
    )
    assert isinstance(budget, RedisBudget)
    before = private_redis.script_calls()  # make_budget only pinged
    assert before == 0
    assert await budget.reserve(600)  # the first: EVAL (caches the script)
    assert not await budget.reserve(600)
    await budget.settle(600, 200)
    assert await budget.spent_nano() == 200
    assert await budget.reserve(800)
    assert private_redis.script_calls() == 5
    stats = client(private_redis.url).info("commandstats")
    assert stats["cmdstat_eval"]["calls"] == 1
    assert stats["cmdstat_evalsha"]["calls"] == 4
