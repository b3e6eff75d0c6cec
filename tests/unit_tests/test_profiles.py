"""The capability table (``_profiles``) and the profiles it gives ChatHolySheep."""

from __future__ import annotations

from typing import get_type_hints

import pytest
from langchain_core.language_models.model_profile import ModelProfile

from langchain_holysheep import ChatHolySheep
from langchain_holysheep import _profiles as profiles_module
from langchain_holysheep._profiles import (
    MODEL_ALIASES,
    MODEL_CAPABILITIES,
    default_structured_output_method,
    get_capabilities,
    intersect_profiles,
    keeps_cache_control,
    model_profile,
    resolve_family,
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


@pytest.mark.parametrize(
    "model",
    [
        "unknown-model",
        "GPT-4.1",
        "gpt-4.1 ",
        "deepseek",
        "gpt-4.1-mini",  # another model, not a dated gpt-4.1
        "gpt-4o-audio-preview",
        "claude-opus-4-1",
        "claude-opus-4-1-20250805",
        "gemini-2.5-flash-lite",
        "mistral-small-latest",  # may move past 2603: not guessed
        "deepseek-v3.2-exp",
    ],
)
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


ADVERTISED = [  # the models the gateway's documentation lists
    "gpt-4.1",
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet-4.5",
    "claude-opus-4",
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.0-flash",
    "mistral-small-2603",
    "mistral-large",
    "deepseek-v3.2",
    "deepseek-chat",
]


@pytest.mark.parametrize("model", ADVERTISED)
def test_every_advertised_model_has_a_profile_with_its_context_window(model):
    profile = make(model).profile
    assert profile is not None
    assert profile["max_input_tokens"] >= 128_000
    assert profile["text_inputs"] is True


def test_every_row_and_alias_cites_a_source_in_the_module_docstring():
    doc = profiles_module.__doc__
    for model in MODEL_CAPABILITIES:
        assert f"``{model}``" in doc, model
    for alias in MODEL_ALIASES:
        assert f"``{alias}``" in doc, alias


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # its own row
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # never gpt-4o
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini-2.5-pro-preview-06-05", "gemini-2.5-pro"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("mistral-large-latest", "mistral-large"),
        ("mistral-large-2411", "mistral-large"),
        ("deepseek-chat", "deepseek-chat"),
    ],
)
def test_dated_and_suffixed_ids_resolve_to_their_family(model, family):
    assert resolve_family(model) == family
    assert get_capabilities(model) is MODEL_CAPABILITIES[family]
    assert make(model).profile == MODEL_CAPABILITIES[family].to_profile()


def test_gpt_4o_mini_is_not_gpt_4o_and_snapshots_keep_their_own_limits():
    assert model_profile("gpt-4o-mini-2024-07-18")["max_output_tokens"] == 16_384
    old = model_profile("gpt-4o-2024-05-13")
    assert old["max_output_tokens"] == 4_096
    assert old["structured_output"] is False  # no json_schema before 2024-08-06
    assert model_profile("gpt-4o-2024-08-06")["structured_output"] is True


def test_profile_values_of_the_new_rows():
    assert model_profile("gpt-4o")["max_input_tokens"] == 128_000
    assert model_profile("claude-opus-4")["max_output_tokens"] == 32_000
    assert model_profile("claude-opus-4")["structured_output"] is False
    assert model_profile("gemini-2.5-pro")["reasoning_effort_levels"] == [
        "low",
        "medium",
        "high",
    ]
    assert model_profile("gemini-2.0-flash")["max_output_tokens"] == 8_192
    assert model_profile("gemini-2.0-flash")["reasoning_output"] is False
    assert model_profile("gemini-2.5-flash")["audio_inputs"] is True
    assert model_profile("deepseek-chat")["reasoning_output"] is False
    assert model_profile("deepseek-chat")["max_output_tokens"] == 8_192
    assert model_profile("gpt-4.1")["pdf_inputs"] is True
    assert model_profile("deepseek-v3.2")["pdf_inputs"] is False
    large = model_profile("mistral-large")
    assert "image_inputs" not in large  # Large 2.1 has none, Large 3 has: unknown
    assert "max_output_tokens" not in large
    assert not get_capabilities("deepseek-chat").echo_reasoning
    assert get_capabilities("claude-sonnet-4.5").one_sampling_parameter
    assert not get_capabilities("claude-opus-4").one_sampling_parameter


def test_what_each_model_refuses_follows_its_documented_inputs():
    assert get_capabilities("deepseek-v3.2").refused_parts == {
        "image_url",
        "input_audio",
        "file",
    }
    assert get_capabilities("gpt-4.1").refused_parts == {"input_audio"}
    assert get_capabilities("claude-sonnet-4.5").refused_parts == {"input_audio"}
    assert get_capabilities("gemini-2.5-flash").refused_parts == frozenset()
    assert get_capabilities("mistral-large").refused_parts == frozenset()


@pytest.mark.parametrize(
    ("model", "kept"),
    [
        ("claude-sonnet-4.5", True),
        ("claude-opus-4-20250514", True),
        ("claude-3-7-sonnet", True),  # unknown, but a Claude model
        ("gpt-4.1", False),
        ("gemini-2.5-flash", False),
        ("deepseek-v3.2", False),
        ("some-new-model", False),
    ],
)
def test_cache_control_is_for_claude_models_only(model, kept):
    assert keeps_cache_control(model, get_capabilities(model)) is kept


def test_intersect_profiles_keeps_what_every_member_has():
    common = intersect_profiles(
        [model_profile("gpt-4.1"), model_profile("claude-sonnet-4.5")]
    )
    assert common["max_input_tokens"] == 200_000
    assert common["max_output_tokens"] == 32_768
    assert common["tool_calling"] is True
    assert common["image_inputs"] is True
    assert common["structured_output"] is False  # claude has no json_schema
    assert "pdf_inputs" not in common  # claude does not say


def test_intersect_profiles_edge_cases():
    assert intersect_profiles([]) is None
    assert intersect_profiles([None, None]) is None
    assert intersect_profiles([{"a": True}, None]) is None  # one says nothing
    assert intersect_profiles([{"a": False}, None]) == {"a": False}
    assert intersect_profiles(
        [
            {"max_input_tokens": 5, "name": "x", "reasoning_effort_levels": ["a", "b"]},
            {"max_input_tokens": 3, "name": "y", "reasoning_effort_levels": ["b"]},
        ]
    ) == {"max_input_tokens": 3, "reasoning_effort_levels": ["b"]}
    assert (
        intersect_profiles(
            [{"reasoning_effort_levels": ["a"]}, {"reasoning_effort_levels": ["b"]}]
        )
        is None
    )
    one = model_profile("deepseek-v3.2")
    assert intersect_profiles([one]) == one
