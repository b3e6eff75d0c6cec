"""A fleet of 8 processes on one key: the shared limiter against the gateway's.

Each worker is its own interpreter (multiprocessing ``spawn``), all calling the
offline gateway, which enforces the key's limits over a sliding window with
real 429s. With one HolySheepRateLimiter on Redis at 90% of the gateway's limit,
nothing is refused and the fleet runs at the configured rate; with a
per-process ``InMemoryRateLimiter`` at the same rate (LangChain's answer today),
the gateway refuses many requests.

Windows are short (5 s) so the runs are quick, yet long enough that scheduling
delays on a slow shared machine (up to ~0.5 s) cannot squeeze the 10% margin out
of a window; each run lasts longer than a window, so without sharing the
gateway must refuse. The assertions are on what the limiter admits, not on
speed.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import time

import pytest

from langchain_holysheep.testing import Fault, RateLimits, Reply
from tests.integration_tests import fleet_worker
from tests.redis_support import SHARED_REDIS_URL, namespace_on_shared_redis

KEY = "cr_fleet_test_key_000000008"
WORKERS = 8
WINDOW = 5.0
GATEWAY_REQUESTS = 50  # per 5 s: 10 a second
RATE = 0.9 * GATEWAY_REQUESTS / WINDOW  # the limiter's: 9 a second
GATEWAY_TOKENS = 5000  # per 5 s: 1,000 a second
TOKEN_RATE = 0.9 * GATEWAY_TOKENS / WINDOW  # 900 a second


@pytest.fixture
def namespace():
    with namespace_on_shared_redis() as name:
        yield name


class Fleet:
    """8 spawned worker processes, started once for the module's runs."""

    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.ready, self.results = context.Queue(), context.Queue()
        self.jobs = [context.Queue() for _ in range(WORKERS)]
        self.workers = [
            context.Process(
                target=fleet_worker.serve,
                args=(index, self.jobs[index], self.ready, self.results),
                daemon=True,
            )
            for index in range(WORKERS)
        ]
        for worker in self.workers:
            worker.start()

    def run(
        self,
        gw,
        limiter,
        limiter_kwargs,
        requests,
        *,
        model_kwargs=None,
        workers=range(WORKERS),
        **extra,
    ):
        """One run of the ``workers`` at once; return each one's 429 count."""
        config = {
            "limiter": limiter,
            "limiter_kwargs": limiter_kwargs,
            "base_url": gw.base_url,
            "api_key": KEY,
            "requests": requests,
            "model_kwargs": model_kwargs or {},
            **extra,
        }
        jobs = [self.jobs[index] for index in workers]
        try:
            for queue_ in jobs:
                queue_.put(config)
            for _ in jobs:
                self.ready.get(timeout=180)
            for queue_ in jobs:
                queue_.put("go")
            return dict(self.results.get(timeout=180) for _ in jobs)
        except queue.Empty:
            pytest.fail("a fleet worker did not report (see its stderr)")

    def stop(self):
        for jobs in self.jobs:
            jobs.put(None)
        for worker in self.workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
        assert all(worker.exitcode == 0 for worker in self.workers)


@pytest.fixture(scope="module")
def fleet():
    fleet = Fleet()
    yield fleet
    fleet.stop()


def test_eight_processes_sharing_one_limiter_are_never_refused(fleet, gw, namespace):
    gw.set_rate_limits(RateLimits(requests=GATEWAY_REQUESTS, window=WINDOW))
    kwargs = {
        "requests_per_minute": RATE * 60,
        "redis_url": SHARED_REDIS_URL,
        "namespace": namespace,
        "api_key": KEY,
    }
    refused = fleet.run(gw, "holysheep", kwargs, requests=8)
    log = gw.rate_limit_log
    times = sorted(d.at for d in log)
    assert sum(refused.values()) == 0, _gaps(times)
    assert [d for d in log if not d.admitted] == []
    assert len(log) == WORKERS * 8
    throughput = (len(times) - 1) / (times[-1] - times[0])
    assert throughput >= 0.85 * RATE


def test_eight_in_memory_limiters_at_the_same_rate_are_refused(fleet, gw):
    """The control: LangChain's per-process limiter, at the same rate each."""
    gw.set_rate_limits(RateLimits(requests=GATEWAY_REQUESTS, window=WINDOW))
    kwargs = {
        "requests_per_second": RATE,
        "check_every_n_seconds": 0.01,
        "max_bucket_size": 1,
    }
    refused = fleet.run(gw, "in_memory", kwargs, requests=8)
    log = gw.rate_limit_log
    assert sum(refused.values()) > 0
    assert len([d for d in log if not d.admitted]) == sum(refused.values())


def test_eight_processes_share_a_token_limit_with_max_tokens(fleet, gw, namespace):
    gw.set_rate_limits(RateLimits(tokens=GATEWAY_TOKENS, window=WINDOW))
    kwargs = {
        "tokens_per_minute": TOKEN_RATE * 60,
        "redis_url": SHARED_REDIS_URL,
        "namespace": namespace,
        "api_key": KEY,
    }
    refused = fleet.run(
        gw, "holysheep", kwargs, requests=7, model_kwargs={"max_tokens": 100}
    )
    log = gw.rate_limit_log
    assert sum(refused.values()) == 0, _gaps(sorted(d.at for d in log))
    assert [d for d in log if not d.admitted] == []
    assert {d.tokens for d in log} == {105}  # "hi" (1 word + 4) plus max_tokens
    ordered = sorted(log, key=lambda d: d.at)
    tokens = sum(d.tokens for d in ordered[:-1])
    throughput = tokens / (ordered[-1].at - ordered[0].at)
    assert throughput >= 0.85 * TOKEN_RATE


def test_a_429_seen_by_one_process_holds_every_process_until_it_ends(
    fleet, gw, namespace
):
    """The gateway sees nothing from any process during a 429's Retry-After.

    Requests already on the wire (or booked a few ms ahead) when the 429 is
    answered still arrive just after it; nothing arrives later in the block.
    The refused call itself completes: the SDK retries it after Retry-After.
    """
    gw.set_rate_limits(RateLimits(requests=10_000))  # only to time-stamp requests
    gw.enqueue(Fault(status=429, headers={"Retry-After": "2"}))
    kwargs = {
        "requests_per_minute": 6000,
        "redis_url": SHARED_REDIS_URL,
        "namespace": namespace,
        "api_key": KEY,
    }
    refused = fleet.run(
        gw, "holysheep", kwargs, requests=6, model_kwargs={"max_retries": 2}
    )
    assert sum(refused.values()) == 0  # every call completed
    times = sorted(d.at for d in gw.rate_limit_log)
    assert len(times) == WORKERS * 6 + 1  # and the SDK's one retry
    first = times[0]  # the request answered 429
    during = [round(t - first, 3) for t in times if first + 0.5 < t < first + 1.9]
    assert during == []
    assert any(t >= first + 1.9 for t in times)


def test_a_breaker_opened_by_one_process_is_skipped_by_the_others(fleet, gw, namespace):
    """Shared breakers: one process opens it, another skips the model, and once
    the cooldown ends, four processes at once send exactly one trial request."""
    dead, alive = "gemini-2.5-flash", "deepseek-v3.2"
    gw.set_default(Fault(status=503, repeat=10**6), model=dead)
    gw.set_default(Reply(content="from the live model"), model=alive)
    chain = {
        "models": [dead, alive],
        "policy": {
            "failure_threshold": 1,
            "cooldown": 4.0,
            "redis_url": SHARED_REDIS_URL,
            "redis_namespace": namespace,
        },
    }

    def sent_to(model):
        return sum(1 for r in gw.requests if r.model == model)

    warm_up = {"models": [alive], "policy": {"redis_url": None}}
    fleet.run(gw, None, None, requests=1, chain=warm_up)  # imports, pools
    alive_before = sent_to(alive)
    start = time.monotonic()
    fleet.run(gw, None, None, requests=1, workers=[0], chain=chain)
    assert sent_to(dead) == 1  # it failed, and opened the fleet's breaker
    fleet.run(gw, None, None, requests=1, workers=[1, 2], chain=chain)
    assert time.monotonic() - start < 4.0, "too slow to test inside the cooldown"
    assert sent_to(dead) == 1  # two other processes skipped it
    time.sleep(max(0.0, start + 4.3 - time.monotonic()))
    fleet.run(gw, None, None, requests=1, workers=[3, 4, 5, 6], chain=chain)
    assert sent_to(dead) == 2  # one trial request for the four of them
    assert sent_to(alive) - alive_before == 1 + 2 + 4


def _gaps(times):
    """The arrival gaps, in ms, to show how a refusal happened."""
    return [round((b - a) * 1000) for a, b in itertools.pairwise(times)]
