"""The fleet rate limiter: cost per acquire, Redis calls per request, a fleet's 429s.

Three measures, against a private ``redis-server`` this script starts on a free
port (so ``INFO commandstats`` counts only its own calls; it falls back to
``HOLYSHEEP_REDIS_URL`` / 127.0.0.1:6379 when ``redis-server`` is not installed):

* **acquire overhead**, interleaved, per call, with limits so high that nobody
  waits: langchain-core's ``InMemoryRateLimiter`` (the baseline),
  ``HolySheepRateLimiter`` in process, ``HolySheepRateLimiter`` on Redis, and
  the ``limits`` library's sliding-window counter on the same Redis. The target
  is Redis's added time: ours minus ``InMemoryRateLimiter``, paired round by
  round, median <= 0.2 ms;
* **Redis script calls per request**: ``EVALSHA`` + ``EVAL`` calls counted by
  ``INFO commandstats`` over ``ChatHolySheep`` requests (requests, tokens and a
  model limit: one call each), target <= 1;
* **a fleet's 429s**: 8 worker processes (``spawn``) against the offline gateway
  limiting the key to 50 requests per 5 s, all sharing one limiter at 90% of
  that, against 8 ``InMemoryRateLimiter``s at 90% each; 429s (target 0 for
  ours) and the admitted rate against the ideal.

    uv run python benchmarks/bench_fleet.py [--quick] [--rounds N] [--json FILE]
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from common import API_KEY, Result, emit, interleave, parser
from langchain_core.rate_limiters import InMemoryRateLimiter

from langchain_holysheep import ChatHolySheep, HolySheepRateLimiter
from langchain_holysheep.testing import OfflineGateway, RateLimits

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

IN_MEMORY = "InMemoryRateLimiter"
LOCAL = "HolySheepRateLimiter (in process)"
REDIS = "HolySheepRateLimiter (Redis)"
LIMITS = "limits, sliding window (Redis)"
ADDED = "added by Redis (ours on Redis - InMemoryRateLimiter)"
NO_LIMIT = 10**12  # a rate so high that no call ever waits
WINDOW, GATEWAY_LIMIT = 5.0, 50


@contextmanager
def private_redis() -> Iterator[str]:
    """A throw-away ``redis-server`` on a free port (else the shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield os.environ.get("HOLYSHEEP_REDIS_URL", "redis://127.0.0.1:6379/0")
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603 (the machine's redis-server)
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis  # noqa: PLC0415

        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def script_calls(url: str) -> int:
    """``EVALSHA`` + ``EVAL`` calls so far, from ``INFO commandstats``."""
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url)
    stats = client.info("commandstats")
    client.close()
    return sum(
        stats.get(f"cmdstat_{n}", {}).get("calls", 0) for n in ("evalsha", "eval")
    )


def acquire_overhead(url: str, calls: int, rounds: int) -> Result:
    """Per-acquire time of each limiter, none of them ever waiting."""
    from limits import RateLimitItemPerSecond  # noqa: PLC0415
    from limits.storage import RedisStorage  # noqa: PLC0415
    from limits.strategies import SlidingWindowCounterRateLimiter  # noqa: PLC0415

    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    in_memory = InMemoryRateLimiter(
        requests_per_second=NO_LIMIT,
        check_every_n_seconds=0.001,
        max_bucket_size=NO_LIMIT,
    )
    local = HolySheepRateLimiter(requests_per_minute=NO_LIMIT, redis_url=None)
    shared = HolySheepRateLimiter(
        requests_per_minute=NO_LIMIT, redis_url=url, namespace=namespace
    )
    storage = RedisStorage(url, key_prefix=namespace)
    sliding = SlidingWindowCounterRateLimiter(storage)
    item = RateLimitItemPerSecond(NO_LIMIT)

    def per_call(one: Callable[[], object]) -> Callable[[], float]:
        def sample() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                one()
            return (time.perf_counter() - start) / calls

        return sample

    samples = interleave(
        {
            IN_MEMORY: per_call(in_memory.acquire),
            LOCAL: per_call(local.acquire),
            REDIS: per_call(shared.acquire),
            LIMITS: per_call(lambda: sliding.hit(item, "bench")),
        },
        rounds,
    )
    shared.close()
    samples[ADDED] = [
        r - b for r, b in zip(samples[REDIS], samples[IN_MEMORY], strict=True)
    ]
    return Result(
        measure="fleet limiter: one acquire, nobody waiting (per call)",
        unit="s",
        target="Redis adds <= 0.2 ms a call over InMemoryRateLimiter",
        target_absolute=0.0002,
        judged=ADDED,
        baseline=IN_MEMORY,
        samples=samples,
        note=f"{calls} acquires per sample, {rounds} samples; loopback Redis",
    )


def round_trips(url: str, requests: int) -> Result:
    """Script calls per ChatHolySheep request (requests + tokens + a model limit)."""
    limiter = HolySheepRateLimiter(
        requests_per_minute=NO_LIMIT,
        tokens_per_minute=NO_LIMIT,
        model_limits={"gpt-4.1": {"requests_per_minute": NO_LIMIT}},
        redis_url=url,
        namespace=f"bench-{uuid.uuid4().hex[:8]}",
    )
    with OfflineGateway(log_requests=False) as gateway:
        llm = ChatHolySheep(
            model="gpt-4.1",
            base_url=gateway.base_url,
            api_key=API_KEY,
            max_tokens=50,
            rate_limiter=limiter,
        )
        llm.invoke("warm up")
        before = script_calls(url)
        for _ in range(requests):
            llm.invoke("hello")
        per_request = (script_calls(url) - before) / requests
    limiter.close()
    return Result(
        measure="fleet limiter: Redis script calls per ChatHolySheep request",
        unit="calls",
        target="<= 1 round trip per request",
        target_absolute=1.0,
        judged=REDIS,
        baseline=REDIS,
        samples={REDIS: [per_request]},
        note=f"INFO commandstats over {requests} invokes (RPM + TPM + a model limit)",
    )


def _worker(config: dict[str, Any], go: Any, results: Any) -> None:
    """One fleet process: build the model, wait for the start, count 429s."""
    from langchain_holysheep.errors import HolySheepRateLimitError  # noqa: PLC0415

    limiter: Any
    if config["shared"]:
        limiter = HolySheepRateLimiter(**config["limiter"])
    else:
        limiter = InMemoryRateLimiter(**config["limiter"])
    llm = ChatHolySheep(
        base_url=config["base_url"],
        api_key=API_KEY,
        max_retries=0,
        rate_limiter=limiter,
    )
    go.wait(120)
    refused = 0
    for _ in range(config["requests"]):
        try:
            llm.invoke("hi")
        except HolySheepRateLimitError:
            refused += 1
    results.put(refused)


def fleet(url: str, workers: int, requests: int) -> Result:
    """429s and admitted rate of ``workers`` processes, shared vs per process."""
    rate = 0.9 * GATEWAY_LIMIT / WINDOW  # a second, each limiter's setting
    context = multiprocessing.get_context("spawn")
    refused: dict[str, list[float]] = {}
    rates: dict[str, float] = {}
    with OfflineGateway() as gateway:
        for name, shared, limiter in (
            (
                f"{workers} processes, one HolySheepRateLimiter on Redis",
                True,
                {
                    "requests_per_minute": rate * 60,
                    "redis_url": url,
                    "namespace": f"bench-{uuid.uuid4().hex[:8]}",
                },
            ),
            (
                f"{workers} processes, an InMemoryRateLimiter each",
                False,
                {
                    "requests_per_second": rate,
                    "check_every_n_seconds": 0.01,
                    "max_bucket_size": 1,
                },
            ),
        ):
            gateway.reset()
            gateway.set_rate_limits(RateLimits(requests=GATEWAY_LIMIT, window=WINDOW))
            go, results = context.Event(), context.Queue()
            config = {
                "shared": shared,
                "limiter": limiter,
                "base_url": gateway.base_url,
                "requests": requests,
            }
            processes = [
                context.Process(target=_worker, args=(config, go, results))
                for _ in range(workers)
            ]
            for process in processes:
                process.start()
            time.sleep(1.0)  # let them import and build their models
            go.set()
            counts = [results.get(timeout=300) for _ in processes]
            for process in processes:
                process.join(timeout=30)
            refused[name] = [float(sum(counts))]
            admitted = sorted(d.at for d in gateway.rate_limit_log if d.admitted)
            span = admitted[-1] - admitted[0] if len(admitted) > 1 else 0.0
            rates[name] = (len(admitted) - 1) / span if span else 0.0
    ours = next(iter(refused))
    return Result(
        measure=f"fleet of {workers} processes at 90% of the key's limit: 429s",
        unit="429s",
        target="0 429s with the shared limiter",
        target_absolute=0.0,
        judged=ours,
        baseline=ours,
        samples=refused,
        note=(
            f"{workers} x {requests} requests; gateway limit {GATEWAY_LIMIT} per "
            f"{WINDOW:g} s, each limiter at {rate:g}/s; admitted rate: "
            + ", ".join(f"{k}: {v:.2f}/s" for k, v in rates.items())
        ),
        extra={"admitted_per_second": rates, "configured_per_second": rate},
    )


def main(argv: list[str] | None = None) -> list[Result]:
    """Run the three measures and print them.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The results.
    """
    args = parser(__doc__ or "").parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 15)
    with private_redis() as url:
        results = [
            acquire_overhead(url, calls=20 if args.quick else 500, rounds=rounds),
            round_trips(url, requests=5 if args.quick else 200),
            fleet(url, workers=2 if args.quick else 8, requests=2 if args.quick else 8),
        ]
    emit(results, args.json)
    return results


if __name__ == "__main__":
    main()
