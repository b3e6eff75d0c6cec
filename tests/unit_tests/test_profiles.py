"""The capability table (``_profiles``) and the profiles it gives ChatHolySheep."""

from __future__ import annotations

from typing import get_type_hints

import pytest
from langchain_core.language_models.model_profile import ModelProfile

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._profiles import (
    MODEL_CAPABILITIES,
    default_structured_output_method,
    model_profile,
)

KNOWN = sorted(MODEL_CAPABILITIES)


def make(model: str = "gpt-4.1") -> ChatHolySheep:
    return ChatHolySheep(model=model, api_key="cr_test", base_url="http://127.0.0.1:9")


@pytest.mark.parametrize("model", KNOWN)
def test_known_models_have_a_valid_profile(model):
    profile = make(model).profile
    assert profile is not None
    assert profile == model_profile(model)
    assert set(profile) <= set(get_type_hints(ModelProfile))
    assert profile["tool_calling"] is True
    assert profile["max_input_tokens"] >= 128_000
    assert profile["structured_output"] is (
        default_structured_output_method(model) == "json_schema"
    )


@pytest.mark.parametrize("model", ["unknown-model", "GPT-4.1", "gpt-4.1 ", "deepseek"])
def test_unknown_models_get_no_profile(model):
    assert make(model).profile is None
    assert model_profile(model) is None


def test_profile_values_that_drive_agents():
    assert model_profile("deepseek-v3.2")["image_inputs"] is False
    assert model_profile("deepseek-v3.2")["reasoning_output"] is True
    assert model_profile("claude-sonnet-4.5")["structured_output"] is False
    assert model_profile("gpt-4.1")["max_input_tokens"] == 1_047_576
    assert "max_output_tokens" not in model_profile("mistral-small-2603")


def test_profiles_are_fresh_copies():
    model_profile("gpt-4.1")["tool_calling"] = False
    assert model_profile("gpt-4.1")["tool_calling"] is True


def test_explicit_profile_wins():
    llm = ChatHolySheep(
        model="gpt-4.1", api_key="cr_x", profile={"tool_calling": False}
    )
    assert llm.profile == {"tool_calling": False}
