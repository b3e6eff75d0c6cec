"""The model catalog over real HTTP: list_models, its TTL cache, validate_model,
and did-you-mean on a chat 404."""

import pytest

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.catalog import alist_models, clear_model_cache, list_models
from langchain_holysheep.errors import (
    HolySheepMissingAPIKeyError,
    HolySheepModelNotFoundError,
    HolySheepServerError,
)
from langchain_holysheep.testing import DEFAULT_MODELS, Fault

KEY = "cr_catalog_test_key"


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_model_cache()
    yield
    clear_model_cache()


def _model_gets(gw):
    return [r for r in gw.requests if r.method == "GET" and r.path == "/v1/models"]


def _chat_posts(gw):
    return [r for r in gw.requests if r.path == "/v1/chat/completions"]


def _llm(gw, **kwargs):
    return ChatHolySheep(base_url=gw.base_url, api_key=KEY, max_retries=0, **kwargs)


def test_list_models_returns_the_catalog_and_sends_the_key(holysheep_gateway):
    gw = holysheep_gateway
    assert list_models(api_key=KEY, base_url=gw.base_url) == list(DEFAULT_MODELS)
    assert gw.last_request.headers["authorization"] == f"Bearer {KEY}"


def test_list_models_is_cached_until_refresh(holysheep_gateway):
    gw = holysheep_gateway
    first = list_models(api_key=KEY, base_url=gw.base_url)
    first.append("mutating the result does not touch the cache")
    assert list_models(api_key=KEY, base_url=gw.base_url) == list(DEFAULT_MODELS)
    assert len(_model_gets(gw)) == 1
    gw.models = ["gpt-4.1"]
    assert list_models(api_key=KEY, base_url=gw.base_url, refresh=True) == ["gpt-4.1"]
    assert len(_model_gets(gw)) == 2


def test_ttl_zero_always_fetches(holysheep_gateway):
    gw = holysheep_gateway
    for _ in range(3):
        list_models(api_key=KEY, base_url=gw.base_url, ttl=0)
    assert len(_model_gets(gw)) == 3


def test_cache_is_per_key(holysheep_gateway):
    gw = holysheep_gateway
    list_models(api_key=KEY, base_url=gw.base_url)
    list_models(api_key="cr_another_key_123", base_url=gw.base_url)
    assert len(_model_gets(gw)) == 2


async def test_alist_models_shares_the_cache(holysheep_gateway):
    gw = holysheep_gateway
    assert await alist_models(api_key=KEY, base_url=gw.base_url) == list(DEFAULT_MODELS)
    assert list_models(api_key=KEY, base_url=gw.base_url) == list(DEFAULT_MODELS)
    assert await alist_models(api_key=KEY, base_url=gw.base_url) == list(DEFAULT_MODELS)
    assert len(_model_gets(gw)) == 1


def test_list_models_reads_the_environment(holysheep_env):
    assert "gpt-4.1" in list_models()
    assert holysheep_env.last_request.path == "/v1/models"


def test_list_models_without_a_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    with pytest.raises(HolySheepMissingAPIKeyError, match="HOLYSHEEP_API_KEY"):
        list_models(base_url="http://127.0.0.1:9/v1")


def test_list_models_failure_is_translated(holysheep_gateway):
    gw = holysheep_gateway
    gw.enqueue(Fault(status=503), endpoint="models")
    with pytest.raises(HolySheepServerError):
        list_models(api_key=KEY, base_url=gw.base_url, max_retries=0)


def test_validate_model_rejects_an_unknown_id_before_any_chat_request(
    holysheep_gateway,
):
    gw = holysheep_gateway
    llm = _llm(gw, model="Mistral-Small-2603", validate_model=True)
    with pytest.raises(HolySheepModelNotFoundError) as info:
        llm.invoke("hi")
    assert info.value.suggestions[0] == "mistral-small-2603"
    assert "case-sensitive" in str(info.value)
    assert _chat_posts(gw) == []


def test_validate_model_checks_once_per_instance_and_model(holysheep_gateway):
    gw = holysheep_gateway
    llm = _llm(gw, model="gpt-4.1", validate_model=True)
    llm.invoke("one")
    llm.invoke("two")
    list(llm.stream("three"))
    assert len(_model_gets(gw)) == 1
    assert len(_chat_posts(gw)) == 3
    with pytest.raises(HolySheepModelNotFoundError):
        llm.invoke("four", model="gpt4.1")
    assert len(_chat_posts(gw)) == 3


async def test_validate_model_async_and_streaming(holysheep_gateway):
    gw = holysheep_gateway
    llm = _llm(gw, model="deepseek-v3", validate_model=True)
    with pytest.raises(HolySheepModelNotFoundError) as info:
        await llm.ainvoke("hi")
    assert info.value.suggestions[0] == "deepseek-v3.2"
    with pytest.raises(HolySheepModelNotFoundError):
        async for _ in llm.astream("hi"):
            pass
    assert _chat_posts(gw) == []
    ok = _llm(gw, model="deepseek-v3.2", validate_model=True)
    assert (await ok.ainvoke("hi")).content


def test_validate_model_is_off_by_default(holysheep_gateway):
    gw = holysheep_gateway
    _llm(gw, model="gpt-4.1").invoke("hi")
    assert _model_gets(gw) == []


def _not_found(model):
    return Fault(
        status=404,
        code="model_not_found",
        param="model",
        message=f"The model `{model}` does not exist or you do not have access to it.",
    )


def test_chat_404_is_enriched_with_suggestions(holysheep_gateway):
    gw = holysheep_gateway
    gw.enqueue(_not_found("Mistral-Small-2603"))
    with pytest.raises(HolySheepModelNotFoundError) as info:
        _llm(gw, model="Mistral-Small-2603").invoke("hi")
    error = info.value
    assert error.suggestions == ("mistral-small-2603",)
    assert "does not exist" in str(error)
    assert "Did you mean 'mistral-small-2603'?" in str(error)
    assert "case-sensitive" in str(error)
    assert isinstance(error.__cause__, HolySheepModelNotFoundError)
    assert error.status_code == 404
    assert len(_model_gets(gw)) == 1


def test_chat_404_on_a_stream_is_enriched(holysheep_gateway):
    gw = holysheep_gateway
    gw.enqueue(_not_found("gpt4.1"))
    with pytest.raises(HolySheepModelNotFoundError) as info:
        list(_llm(gw, model="gpt4.1").stream("hi"))
    assert info.value.suggestions[0] == "gpt-4.1"


async def test_chat_404_async_is_enriched(holysheep_gateway):
    gw = holysheep_gateway
    gw.enqueue(_not_found("claude-sonnet-4-5"), _not_found("claude-sonnet-4-5"))
    llm = _llm(gw, model="claude-sonnet-4-5")
    with pytest.raises(HolySheepModelNotFoundError) as info:
        await llm.ainvoke("hi")
    assert info.value.suggestions[0] == "claude-sonnet-4.5"
    with pytest.raises(HolySheepModelNotFoundError) as info:
        async for _ in llm.astream("hi"):
            pass
    assert info.value.suggestions[0] == "claude-sonnet-4.5"


def test_strict_gateway_404_is_enriched(holysheep_gateway):
    gw = holysheep_gateway
    gw.strict_models = True
    with pytest.raises(HolySheepModelNotFoundError) as info:
        _llm(gw, model="gemini-2.5-flsh").invoke("hi")
    assert info.value.suggestions[0] == "gemini-2.5-flash"


def test_catalog_failure_never_masks_the_original_404(holysheep_gateway):
    gw = holysheep_gateway
    gw.enqueue(_not_found("gpt4.1"))
    gw.enqueue(Fault(status=500), endpoint="models")
    with pytest.raises(HolySheepModelNotFoundError) as info:
        _llm(gw, model="gpt4.1").invoke("hi")
    assert info.value.suggestions == ()
    assert "does not exist" in str(info.value)
    assert "Did you mean" not in str(info.value)


def test_404_for_a_listed_model_is_left_alone(holysheep_gateway):
    gw = holysheep_gateway
    gw.enqueue(_not_found("gpt-4.1"))
    with pytest.raises(HolySheepModelNotFoundError) as info:
        _llm(gw, model="gpt-4.1").invoke("hi")
    assert info.value.suggestions == ()
    assert "Did you mean" not in str(info.value)
