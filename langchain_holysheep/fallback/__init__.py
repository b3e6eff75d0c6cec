"""The fallback chain: a chat model that falls over across models, and its breaker.

:class:`ChatHolySheepFallback` is a ``BaseChatModel`` in its own right, so
``bind_tools``, ``with_structured_output``, ``create_agent`` and LangGraph accept
it. Each call tries its members in order and answers with the first that
succeeds. What makes it fall over, and what does not::

    error / outcome                              default      same member again?
    -------------------------------------------  -----------  ------------------
    429, 5xx, 408/409, connection, timeout       fall over    up to max_retries
    error event inside a stream, truncated       fall over    up to max_retries
    stream, body that is not a completion
    404 model not found                          fall over    no
    an empty answer (no text, tool call or       fall over    up to max_retries
    refusal), streamed or not
    an error object with a 200: as its status    as status    as status
    400, 401, 403, 422, context overflow, 402    raise        no
    a response_checks rejection (not streams)    fall over    no
    structured output that cannot be parsed      fall over    once, if
                                                              reprompt_on_parse_error
    member skipped: its circuit is open          fall over    no
    input the member's model cannot take         fall over    no
    (HolySheepUnsupportedInputError, not sent)

Each member keeps its own model's rules: a setting it can do without
(``top_p`` beside ``temperature`` for Claude Sonnet 4.5, ``parallel_tool_calls``
where the model lacks it) is left out of its request with one warning, and the
chain's ``profile`` is what every member's profile has in common.

Streams commit on the first chunk that carries output (text, reasoning or a
tool-call delta): before it the chain may fall over (nothing has been yielded);
after it, errors propagate and two models' output are never spliced.

A :class:`CircuitBreaker` per (gateway, model) is shared by every chain in the
process, across threads and event loops, and skips a member after
``failure_threshold`` consecutive retryable failures, for a cooldown seeded from
``Retry-After`` (else escalating from ``cooldown``), then lets one half-open
trial request decide whether the model is back. With a ``redis_url`` in the
policy (default ``HOLYSHEEP_REDIS_URL``) it is a :class:`SharedCircuitBreaker`,
whose state every process on that Redis shares (``_shared``).

The parts, one job each: ``_policy`` (the triggers, response checks and retry
wait, pure functions), ``_breaker`` (the circuit breaker and its registry, no
LangChain), ``_member`` (one member's call and stream), ``_walk`` (the attempt
loop every call shares) and ``_chain`` (the chain and its structured output).
The three errors live in :mod:`langchain_holysheep.errors` and are re-exported
here.

Importing this package loads ``openai`` (through :mod:`langchain_holysheep.errors`);
``ChatHolySheep.with_model_fallbacks`` imports it lazily.
"""

from __future__ import annotations

from langchain_holysheep.errors import (
    HolySheepCircuitOpenError,
    HolySheepFallbackError,
    HolySheepResponseRejectedError,
)
from langchain_holysheep.fallback._breaker import (
    CircuitBreaker,
    CircuitBreakerPolicy,
    CircuitSnapshot,
    CircuitState,
    circuit_breaker_states,
    reset_circuit_breakers,
)
from langchain_holysheep.fallback._chain import ChatHolySheepFallback
from langchain_holysheep.fallback._policy import (
    FallbackOn,
    ResponseCheck,
    empty_content,
    finish_reason_length,
    is_fallback_error,
)
from langchain_holysheep.fallback._shared import (
    SharedCircuitBreaker,
    get_circuit_breaker,
)

__all__ = [
    "ChatHolySheepFallback",
    "CircuitBreaker",
    "CircuitBreakerPolicy",
    "CircuitSnapshot",
    "CircuitState",
    "FallbackOn",
    "HolySheepCircuitOpenError",
    "HolySheepFallbackError",
    "HolySheepResponseRejectedError",
    "ResponseCheck",
    "SharedCircuitBreaker",
    "circuit_breaker_states",
    "empty_content",
    "finish_reason_length",
    "get_circuit_breaker",
    "is_fallback_error",
    "reset_circuit_breakers",
]
