"""The package's features against the real gateway (skipped without a key).

These also check, once a key is available, the claims the design relies on:
the catalog lists the documented ids, and whether the gateway reports a cost.
"""

import pytest
from pydantic import BaseModel

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.callbacks import holysheep_usage
from langchain_holysheep.catalog import list_models, suggest_models

DOCUMENTED_IDS = [
    "mistral-small-2603",
    "gpt-4.1",
    "claude-sonnet-4.5",
    "gemini-2.5-flash",
    "deepseek-v3.2",
]


class Capital(BaseModel):
    """A country's capital."""

    country: str
    capital: str


def test_catalog_lists_the_documented_models():
    available = list_models(refresh=True)
    missing = [m for m in DOCUMENTED_IDS if m not in available]
    assert not missing, f"not served: {missing}; close ids: " + str(
        {m: suggest_models(m, available) for m in missing}
    )


@pytest.mark.parametrize("model_id", DOCUMENTED_IDS)
def test_structured_output_with_the_default_method(model_id):
    extract = ChatHolySheep(model=model_id, temperature=0).with_structured_output(
        Capital
    )
    result = extract.invoke("What is the capital of France?")
    assert isinstance(result, Capital)
    assert result.capital.lower() == "paris"


def test_fallback_chain_answers_and_reports_the_served_model():
    chain = ChatHolySheep(
        model="no-such-model-xyz", max_retries=0
    ).with_model_fallbacks(["mistral-small-2603"])
    reply = chain.invoke("Say OK.")
    assert reply.response_metadata["model_name"].startswith("mistral-small")
    attempts = reply.response_metadata["fallback_attempts"]
    assert attempts
    assert attempts[0]["model"] == "no-such-model-xyz"


def test_cost_and_latency_are_reported():
    with holysheep_usage() as usage:
        reply = ChatHolySheep(model="mistral-small-2603").invoke("Say OK.")
    assert reply.response_metadata["latency"]["total_ms"] > 0
    assert reply.response_metadata["cost_usd"] is not None
    assert reply.response_metadata["cost_source"] in {"gateway", "price_table"}
    assert usage.snapshot().requests == 1
