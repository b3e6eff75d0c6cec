"""Failover cost: a chain whose primary answers 503 at once vs the second directly.

The gateway (a separate process) answers every request for the primary,
``gpt-4.1``, with an immediate 503, and serves ``mistral-small-2603`` normally.
Interleaved, per call:

* ``ChatHolySheep(model="mistral-small-2603")`` — the direct call to the second;
* ``ChatHolySheepFallback([gpt-4.1, mistral-small-2603])`` with the circuit
  breaker off, so *every* call really tries the primary, gets the 503 and fails
  over (with the breaker on, the primary would be skipped after three failures);
* the raw SDK calling the second model, for reference.

The target is the failover's added time: the chain's time per call minus the
direct call's, paired round by round, median < 5 ms.

    uv run python benchmarks/bench_fallback.py [--quick] [--rounds N] [--json FILE]
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import openai
from common import API_KEY, BASELINE, GatewayProcess, Result, emit, interleave, parser

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.fallback import ChatHolySheepFallback

if TYPE_CHECKING:
    from collections.abc import Callable

PRIMARY = "gpt-4.1"
SECOND = "mistral-small-2603"
PROMPT = "Say hello."
DIRECT = "ChatHolySheep (second model, direct)"
CHAIN = "ChatHolySheepFallback (503, then second)"
OVERHEAD = "failover overhead (chain - direct)"
SETUP = f"gw.set_default(Fault(status=503), model={PRIMARY!r})"


def main(argv: list[str] | None = None) -> list[Result]:
    """Measure the failover overhead and print it.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The results.
    """
    args = parser(__doc__ or "").parse_args(argv)
    # The chain logs a warning per failover: thousands here, by design.
    logging.getLogger("langchain_holysheep").setLevel(logging.ERROR)
    calls = 5 if args.quick else 200
    rounds = args.rounds or (1 if args.quick else 15)
    with GatewayProcess(setup=SETUP) as gateway:
        base = {"base_url": gateway.base_url, "api_key": API_KEY}
        direct = ChatHolySheep(model=SECOND, max_retries=0, **base)
        chain = ChatHolySheepFallback(
            models=[ChatHolySheep(model=PRIMARY, **base), SECOND],
            circuit_breaker=None,
        )
        sdk = openai.OpenAI(max_retries=0, **base)
        messages: Any = [{"role": "user", "content": PROMPT}]

        def check_chain() -> None:
            message = chain.invoke(PROMPT)
            if message.response_metadata.get("model_name") != SECOND:
                msg = f"the chain did not fail over: {message.response_metadata}"
                raise RuntimeError(msg)

        check_chain()

        def per_call(one: Callable[[], object]) -> Callable[[], float]:
            def sample() -> float:
                start = time.perf_counter()
                for _ in range(calls):
                    one()
                return (time.perf_counter() - start) / calls

            return sample

        samples = interleave(
            {
                DIRECT: per_call(lambda: direct.invoke(PROMPT)),
                CHAIN: per_call(lambda: chain.invoke(PROMPT)),
                BASELINE: per_call(
                    lambda: sdk.chat.completions.create(model=SECOND, messages=messages)
                ),
            },
            rounds,
        )
        sdk.close()
    samples[OVERHEAD] = [
        c - d for c, d in zip(samples[CHAIN], samples[DIRECT], strict=True)
    ]
    result = Result(
        measure="fallback: primary answers 503 at once, second answers (per call)",
        unit="s",
        target="failover adds < 5 ms over a direct call to the second",
        target_absolute=0.005,
        judged=OVERHEAD,
        baseline=DIRECT,
        samples=samples,
        note=f"{calls} calls per sample, {rounds} samples; circuit breaker off",
    )
    emit([result], args.json)
    return [result]


if __name__ == "__main__":
    main()
