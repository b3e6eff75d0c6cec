"""The fallback chain without the network: construction, secrets, the chat-model API.

The behaviour over HTTP lives in tests/integration_tests/test_fallback.py; the
policy, the breaker, the walk and the errors have their own unit files.
"""

from __future__ import annotations

import pytest
from langchain_core.exceptions import ModelRateLimitError
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.load import dumpd, dumps, load
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableBinding
from pydantic import BaseModel, ValidationError

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._profiles import intersect_profiles, model_profile
from langchain_holysheep.errors import HolySheepInputError
from langchain_holysheep.fallback import (
    ChatHolySheepFallback,
    CircuitBreakerPolicy,
    is_fallback_error,
    reset_circuit_breakers,
)

KEY = "cr_unit_fallback_secret_99"
URL = "https://gateway.example.com/v1"


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_circuit_breakers()
    yield
    reset_circuit_breakers()


def _chain(**kwargs) -> ChatHolySheepFallback:
    kwargs.setdefault("models", ["mistral-small-2603", "gemini-2.5-flash"])
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("base_url", URL)
    return ChatHolySheepFallback(**kwargs)


# ------------------------------------------------------------ construction
def test_chat_model_settings_go_to_members_given_as_ids(monkeypatch):
    chain = _chain(temperature=0.3, timeout=7, max_retries=1)
    assert chain.max_retries == 1  # the chain's own retry budget
    members = [m.model for m in chain._members()]
    assert [m.model_name for m in members] == ["mistral-small-2603", "gemini-2.5-flash"]
    for member in members:
        assert isinstance(member, ChatHolySheep)
        assert member.temperature == 0.3
        assert member.timeout == 7
        assert member.base_url == URL
        assert member.max_retries == 0  # SDK retries are off inside the chain


def test_members_are_built_lazily_and_once():
    chain = _chain()
    assert chain._built is None
    first = chain._members()
    assert chain._members() is first


def test_ids_copy_the_first_chat_holysheep_member_and_share_its_pool():
    primary = ChatHolySheep(
        model="gpt-4.1", api_key=KEY, base_url=URL, temperature=0.1, max_retries=3
    )
    chain = primary.with_model_fallbacks(["deepseek-v3.2"], max_retries=1)
    first, second = (m.model for m in chain._members())
    assert isinstance(second, ChatHolySheep)
    assert (first.model_name, second.model_name) == ("gpt-4.1", "deepseek-v3.2")
    assert second.temperature == 0.1
    assert first.max_retries == second.max_retries == 0
    assert primary.max_retries == 3  # the user's model is not modified
    assert first._client_config(None) == second._client_config(None)


def test_settings_and_a_chat_holysheep_member_together_are_rejected():
    primary = ChatHolySheep(api_key=KEY, base_url=URL)
    with pytest.raises(ValidationError, match="Set them on that member"):
        ChatHolySheepFallback(models=[primary, "gpt-4.1"], temperature=0)


def test_settings_without_any_model_id_are_rejected():
    primary = ChatHolySheep(api_key=KEY, base_url=URL)
    other = ChatHolySheep(model="gpt-4.1", api_key=KEY, base_url=URL)
    with pytest.raises(ValidationError, match="only to members given as model ids"):
        ChatHolySheepFallback(models=[primary, other], temperature=0)


def test_model_keyword_is_rejected_in_favour_of_models():
    with pytest.raises(ValidationError, match="models="):
        _chain(model="gpt-4.1")


def test_empty_member_list_is_rejected():
    with pytest.raises(ValidationError, match="at least 1"):
        ChatHolySheepFallback(models=[])


@pytest.mark.parametrize("empty", [(), []])
def test_empty_fallback_on_is_rejected(empty):
    with pytest.raises(ValidationError, match="fallback_on is empty"):
        _chain(fallback_on=empty)


def test_fallback_on_rejects_things_that_are_not_types_or_predicates():
    with pytest.raises(ValidationError, match="exception types or predicates"):
        _chain(fallback_on=[ModelRateLimitError, 42])


def test_fallback_on_accepts_a_single_type_or_predicate():
    assert _chain(fallback_on=ModelRateLimitError).fallback_on == (ModelRateLimitError,)
    assert _chain(fallback_on=is_fallback_error).fallback_on == (is_fallback_error,)


def test_circuit_breaker_accepts_true_and_false():
    assert _chain(circuit_breaker=False).circuit_breaker is None
    assert _chain(circuit_breaker=True).circuit_breaker == CircuitBreakerPolicy()


def test_foreign_member_that_retries_by_itself_gets_a_warning():
    class Retrying(FakeListChatModel):
        max_retries: int = 2

    with pytest.warns(UserWarning, match="retries by itself"):
        _chain(models=["gpt-4.1", Retrying(responses=["hi"])])


def test_foreign_member_without_retries_gets_no_warning():
    chain = _chain(models=["gpt-4.1", FakeListChatModel(responses=["hi"])])
    assert chain.model_names == ["gpt-4.1", "FakeListChatModel"]


# ----------------------------------------------------------------- secrets
def test_key_never_appears_in_repr_or_serialized_output():
    chain = _chain()
    assert KEY not in repr(chain)
    assert KEY not in str(chain.settings)
    assert KEY not in dumps(chain)
    assert KEY not in repr(chain._members())


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_serialization_round_trip(monkeypatch):
    chain = _chain(temperature=0.2, max_retries=1)
    serialized = dumpd(chain)
    assert serialized["id"] == [
        "langchain_holysheep",
        "fallback",
        "ChatHolySheepFallback",
    ]
    assert serialized["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["HOLYSHEEP_API_KEY"],
    }
    monkeypatch.setenv("HOLYSHEEP_API_KEY", KEY)
    loaded = load(
        serialized,
        allowed_objects=[ChatHolySheepFallback],
        valid_namespaces=["langchain_holysheep"],
        secrets_from_env=True,
    )
    assert isinstance(loaded, ChatHolySheepFallback)
    assert loaded.model_names == chain.model_names
    assert loaded.max_retries == 1
    assert loaded._members()[1].model.temperature == 0.2
    assert loaded._members()[1].model.api_key.get_secret_value() == KEY


# ------------------------------------------------------------ chat model API
def test_ls_params_come_from_the_primary():
    params = _chain(temperature=0.5, max_tokens=9)._get_ls_params()
    assert params["ls_provider"] == "holysheep"
    assert params["ls_model_name"] == "mistral-small-2603"
    assert params["ls_temperature"] == 0.5
    assert params["ls_max_tokens"] == 9


def test_bind_tools_binds_openai_tools_and_checks_every_member():
    class GetWeather(BaseModel):
        """Get the weather."""

        city: str

    bound = _chain().bind_tools([GetWeather], tool_choice="any")
    assert isinstance(bound, RunnableBinding)
    assert bound.kwargs["tools"][0]["function"]["name"] == "GetWeather"
    assert bound.kwargs["tool_options"] == {"tool_choice": "any"}


def _echo(x: int) -> int:
    """Echo x."""
    return x


def test_bind_tools_binds_what_only_some_members_can_take():
    """Regression: parallel_tool_calls on a mistral+gemini chain raised at bind."""
    chain = _chain(models=["mistral-small-2603", "gemini-2.5-flash"])
    bound = chain.bind_tools([_echo], parallel_tool_calls=False)
    assert bound.kwargs["tool_options"] == {"parallel_tool_calls": False}
    strict = _chain(models=["claude-sonnet-4.5", "gpt-4.1"]).bind_tools(
        [_echo], strict=True
    )
    assert strict.kwargs["tool_options"] == {"strict": True}


def test_bind_tools_raises_at_bind_time_when_no_member_can_take_the_options():
    chain = _chain(models=["gemini-2.5-flash", "deepseek-v3.2"])
    with pytest.raises(HolySheepInputError, match="No member") as info:
        chain.bind_tools([_echo], strict=True)
    message = str(info.value)
    assert (
        "gemini-2.5-flash: Model 'gemini-2.5-flash' does not support strict" in message
    )
    assert "deepseek-v3.2: Model 'deepseek-v3.2' does not support strict" in message


def test_structured_output_raises_when_no_member_can_give_it():
    chain = _chain(models=["claude-sonnet-4.5", "deepseek-v3.2"])
    with pytest.raises(HolySheepInputError, match="No member"):
        chain.with_structured_output(
            {"title": "T", "type": "object"}, method="json_schema"
        )
    chain.with_structured_output(
        {"title": "T", "type": "object"}, method="json_mode"
    )  # deepseek has it: claude fails when called


def test_members_are_copies_that_adapt_and_the_users_models_are_untouched():
    primary = ChatHolySheep(model="claude-sonnet-4.5", api_key=KEY, base_url=URL)
    chain = primary.with_model_fallbacks(["gemini-2.5-flash"])
    first, second = (m.model for m in chain._members())
    assert first is not primary
    assert primary._on_drop is None
    assert first._on_drop is not None
    assert second._on_drop is not None


def test_bind_tools_names_a_member_without_tool_calling():
    chain = _chain(models=["gpt-4.1", FakeListChatModel(responses=["hi"])])
    with pytest.raises(NotImplementedError, match="'FakeListChatModel' does not"):
        chain.bind_tools([{"type": "function", "function": {"name": "f"}}])


def test_get_num_tokens_uses_the_primary():
    chain = _chain()
    messages = [AIMessage("hello there, how are you")]
    assert chain.get_num_tokens_from_messages(messages) == (
        chain._members()[0].model.get_num_tokens_from_messages(messages)
    )


# --------------------------------------------------------- shared breakers
def test_chains_naming_the_same_model_and_gateway_share_a_breaker():
    one = _chain()
    two = ChatHolySheep(
        model="gemini-2.5-flash", api_key=KEY, base_url=URL
    ).with_model_fallbacks(["mistral-small-2603"])
    breakers_one = {m.name: m.breaker for m in one._members()}
    breakers_two = {m.name: m.breaker for m in two._members()}
    assert breakers_one == breakers_two
    assert set(one.circuit_states()) == {"mistral-small-2603", "gemini-2.5-flash"}


# ----------------------------------------------------------------- profile
def test_the_chain_profile_is_what_every_member_has():
    chain = _chain(models=["gpt-4.1", "deepseek-v3.2"])
    profile = chain.profile
    assert profile == intersect_profiles(
        [model_profile("gpt-4.1"), model_profile("deepseek-v3.2")]
    )
    assert profile["max_input_tokens"] == 128_000  # the smallest window
    assert profile["max_output_tokens"] == 32_768  # the smallest output limit
    assert profile["tool_calling"] is True
    assert profile["image_inputs"] is False  # deepseek takes none
    assert profile["structured_output"] is False  # deepseek has no json_schema
    both = _chain(models=["gpt-4.1", "gemini-2.5-flash"]).profile
    assert both["structured_output"] is True
    assert both["max_input_tokens"] == 1_047_576


def test_members_built_from_ids_carry_their_own_models_profile():
    """Regression: ids copied the primary's profile along with its settings."""
    primary = ChatHolySheep(
        model="gpt-4.1", api_key=KEY, base_url=URL, profile={"max_input_tokens": 5000}
    )
    chain = primary.with_model_fallbacks(["deepseek-v3.2", "gpt-4o-2024-08-06"])
    first, second, third = (m.model.profile for m in chain._members())
    assert first == {"max_input_tokens": 5000}
    assert second == model_profile("deepseek-v3.2")
    assert third == model_profile("gpt-4o")
    assert chain.profile["max_input_tokens"] == 5000
    assert chain.profile["image_inputs"] is False  # deepseek's own "no"
    assert "tool_calling" not in chain.profile  # the primary's profile does not say


def test_an_explicit_chain_profile_wins_and_a_foreign_member_counts():
    assert _chain(profile={"max_input_tokens": 42}).profile == {"max_input_tokens": 42}
    foreign = _chain(models=["gpt-4.1", FakeListChatModel(responses=["hi"])])
    # The fake model says nothing: only gpt-4.1's "no"s hold for the chain.
    assert foreign.profile == {"audio_inputs": False, "reasoning_output": False}
