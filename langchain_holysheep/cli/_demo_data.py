"""Canned data: the offline gateway's answers and the demo steps' data.

Only text and numbers live here; the code that uses them is in
:mod:`langchain_holysheep.cli._connect` (the offline responder) and
:mod:`langchain_holysheep.cli.demo` (the steps).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FALLBACK_ANSWER",
    "KNOWLEDGE",
    "OFFLINE_ANSWERS",
    "RAG_ANSWER",
    "TICKETS",
    "WEATHER",
]

# Scripted answers for the offline gateway: (keywords, answer). The first entry
# whose keyword appears in the prompt wins; the last one is the fallback.
OFFLINE_ANSWERS: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (
        ("gateway", "holysheep"),
        (
            "HolySheep is an OpenAI-compatible gateway: one API key reaches GPT-4.1, "
            "Claude Sonnet 4.5, Gemini 2.5 Flash, DeepSeek V3.2 and Mistral Small. "
            "Because it speaks the OpenAI protocol, LangChain code switches models by "
            "changing one string. A gateway also gives one bill, one rate limit to "
            "watch and a fallback when a provider is down."
        ),
    ),
    (
        ("sheep", "wool"),
        (
            "Sheep are grazing animals kept for wool, milk and meat. A single fleece "
            "can weigh several kilograms, and it grows back every year. Flocks stay "
            "together because a lone sheep is an easy target."
        ),
    ),
    (
        ("haiku", "poem"),
        (
            "Tokens drift like snow,\nthe gateway counts every flake,\nthe bill stays "
            "quite small."
        ),
    ),
    (
        ("stream", "token"),
        (
            "Streaming sends the answer a few tokens at a time, so the first words "
            "appear long before the last ones are generated. The time to the first "
            "token is what a user feels as speed. Usage arrives on the final chunk."
        ),
    ),
    (
        ("capital", "france", "paris"),
        (
            "The capital of France is Paris, on the Seine, with about two million "
            "people in the city itself."
        ),
    ),
    (
        (),
        (
            "This is a scripted offline answer. With HOLYSHEEP_API_KEY set, the same "
            "command asks a real model through the HolySheep gateway. Everything else "
            "(streaming, usage, cost and latency) works exactly the same way."
        ),
    ),
)


# The weather tool's data: the demo's tool is local and returns canned values,
# online too (the point is the round trip, not the weather).
WEATHER: Final = {
    "paris": {"temperature_c": 18, "conditions": "light rain", "wind_kmh": 12},
    "lisbon": {"temperature_c": 24, "conditions": "sunny", "wind_kmh": 8},
}


# Support messages for the extraction step, each with what the offline gateway
# answers for it (a real model extracts the same fields online).
TICKETS: Final = (
    (
        (
            "Hi, Ana Silva here (ana@lisbontiles.pt). Invoice 4411 was charged twice "
            "this morning, please refund one of them today!"
        ),
        {
            "customer": "Ana Silva",
            "email": "ana@lisbontiles.pt",
            "category": "billing",
            "urgent": True,
            "summary": "Invoice 4411 was charged twice; wants one charge refunded.",
        },
    ),
    (
        (
            "hello, Tom Becker from Nordwind. Does the streaming API report token "
            "usage? No rush, just planning next quarter."
        ),
        {
            "customer": "Tom Becker",
            "email": None,
            "category": "question",
            "urgent": False,
            "summary": "Asks whether streamed responses report token usage.",
        },
    ),
)


# A tiny knowledge base for the RAG step: (title, text); paragraphs are chunks.
KNOWLEDGE: Final = (
    (
        "API keys",
        (
            "HolySheep keys start with cr_. The package reads the key from the "
            "HOLYSHEEP_API_KEY environment variable only.\n\n"
            "The key never appears in reprs, logs, traces or error messages: known "
            "key patterns are masked."
        ),
    ),
    (
        "Fallback chains",
        (
            "with_model_fallbacks tries the next model when the primary one fails "
            "with a rate limit, a server error, a timeout or a lost connection.\n\n"
            "Bad requests and authentication errors fail fast: every model would "
            "reject them too. The answer records which model served it."
        ),
    ),
    (
        "Streaming usage",
        (
            "Streamed calls request usage with stream_options and get token counts "
            "on the final chunk.\n\n"
            "So cost and latency tracking work for streamed calls as well as for "
            "plain invoke."
        ),
    ),
    (
        "Pricing",
        (
            "The price table lists US dollars per million input and output tokens "
            "for each model, gateway fee included.\n\n"
            "Override it with HOLYSHEEP_PRICES_FILE when your contract has other "
            "prices."
        ),
    ),
    (
        "Offline gateway",
        (
            "The offline gateway is a loopback server for tests and demos.\n\n"
            "It scripts replies and faults and records every request it receives."
        ),
    ),
)


FALLBACK_ANSWER: Final = (
    "It keeps your app answering when one model is down: the "
    "next model in the list takes the request."
)
"""What the fallback step's backup model answers offline."""

RAG_ANSWER: Final = (
    "The chain moves on to the next model in the list: a server "
    "error is one of the failures (with rate limits, timeouts and lost "
    "connections) that trigger a fallback, and the answer records "
    "which model served it [Fallback chains]."
)
"""What the RAG step's model answers offline, citing the retrieved document."""
