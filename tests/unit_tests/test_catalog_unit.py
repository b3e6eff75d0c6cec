"""The catalog's pure parts: did-you-mean, the model-not-found error, the old name.

No sockets (fetching and caching are tested against the offline gateway in
``tests/integration_tests/test_catalog.py``).
"""

import importlib

import pytest

from langchain_holysheep import catalog
from langchain_holysheep.catalog import model_not_found_error, suggest_models
from langchain_holysheep.errors import HolySheepError, HolySheepModelNotFoundError

SERVED = [
    "mistral-small-2603",
    "gpt-4.1",
    "claude-sonnet-4.5",
    "gemini-2.5-flash",
    "deepseek-v3.2",
]


def test_wrong_case_suggests_the_served_spelling_first():
    assert suggest_models("Mistral-Small-2603", SERVED)[0] == "mistral-small-2603"


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("mistral-small", "mistral-small-2603"),
        ("gpt4.1", "gpt-4.1"),
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("gemini-2.5-flsh", "gemini-2.5-flash"),
        ("deepseek-v3", "deepseek-v3.2"),
    ],
)
def test_close_typos_suggest_the_served_id(typo, expected):
    assert suggest_models(typo, SERVED)[0] == expected


def test_nothing_close_suggests_nothing():
    assert suggest_models("llama-70b-instruct", SERVED) == []


def test_suggestions_are_capped_unique_and_never_the_model_itself():
    served = ["gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "GPT-4.1", "gpt-4.1"]
    suggestions = suggest_models("gpt-4.1", served, n=2)
    assert len(suggestions) == 2
    assert "gpt-4.1" not in suggestions
    assert suggestions[0] == "GPT-4.1"
    assert suggest_models("gpt-4.1", served, n=0) == []


def test_error_without_a_request_explains_the_case_rule():
    error = model_not_found_error(
        "Mistral-Small-2603", SERVED, base_url="https://api.holysheep.ai/v1"
    )
    assert isinstance(error, HolySheepModelNotFoundError)
    assert isinstance(error, HolySheepError)
    assert error.status_code == 404
    assert error.suggestions == ("mistral-small-2603",)
    text = str(error)
    assert "Did you mean 'mistral-small-2603'?" in text
    assert "case-sensitive" in text
    assert "https://api.holysheep.ai/v1" in text
    assert error.body["error"]["code"] == "model_not_found"


def test_error_keeps_the_gateway_message_and_partial_text():
    original = model_not_found_error("gpt4.1", [], base_url=None)
    original.partial_text = "half an answer"
    enriched = model_not_found_error("gpt4.1", SERVED, original)
    assert str(enriched).startswith(original.message)
    assert "Did you mean 'gpt-4.1'?" in str(enriched)
    assert "case-sensitive" not in str(enriched)
    assert enriched.partial_text == "half an answer"
    assert enriched.response is original.response


def test_error_with_no_close_id_says_how_to_list_them():
    error = model_not_found_error("llama-70b", SERVED)
    assert error.suggestions == ()
    assert "5 models" in str(error)
    assert "list_models()" in str(error)


def test_the_old_module_name_still_imports_the_same_catalog():
    old = importlib.import_module("langchain_holysheep.models")
    assert old.__all__
    assert set(old.__all__) <= set(catalog.__all__)
    for name in old.__all__:
        assert getattr(old, name) is getattr(catalog, name)
    from langchain_holysheep.models import list_models  # the documented old import

    assert list_models is catalog.list_models
