"""ChatHolySheep's parameters, validation, secrets and LangChain plumbing."""

import pickle
import warnings

import pytest
from langchain_core.load import dumpd, dumps, load
from langchain_core.messages import HumanMessage
from pydantic import ValidationError

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.chat_models import DEFAULT_BASE_URL
from langchain_holysheep.errors import HolySheepMissingAPIKeyError

KEY = "cr_unit_secret_abcdef123456"
HI = [HumanMessage("hi")]


def _model(**kwargs):
    return ChatHolySheep(api_key=KEY, **kwargs)


def _body(chat_model, stream=False, stop=None, **kwargs):
    """The body the model builds: its fields handed to ``_convert.build_request``.

    The body's own rules are tested on ``build_request`` (test_build_request.py).
    """
    return chat_model._request_body(HI, stop, dict(kwargs), stream=stream)


def test_defaults():
    model = _model()
    assert model.model_name == "mistral-small-2603"
    assert model.base_url == DEFAULT_BASE_URL
    assert model.timeout == 120.0
    assert model.connect_timeout == 10.0
    assert model.stream_usage is True


def test_env_vars(monkeypatch):
    monkeypatch.setenv("HOLYSHEEP_API_KEY", KEY)
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", "http://127.0.0.1:9/v1")
    model = ChatHolySheep()
    assert model.api_key.get_secret_value() == KEY
    assert model.base_url == "http://127.0.0.1:9/v1"


def test_unset_params_are_not_sent():
    assert _body(_model()) == {
        "model": "mistral-small-2603",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_set_params_are_sent():
    model = _model(
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        stop=["\n"],
        seed=7,
        n=2,
        frequency_penalty=0.1,
        presence_penalty=-0.1,
        logprobs=True,
        top_logprobs=3,
        reasoning_effort="low",
    )
    body = _body(model)
    assert {k: v for k, v in body.items() if k != "messages"} == {
        "model": "mistral-small-2603",
        "temperature": 0.3,
        "max_tokens": 50,
        "top_p": 0.9,
        "stop": ["\n"],
        "seed": 7,
        "n": 2,
        "frequency_penalty": 0.1,
        "presence_penalty": -0.1,
        "logprobs": True,
        "top_logprobs": 3,
        "reasoning_effort": "low",
    }


def test_per_call_overrides_win():
    model = _model(temperature=0.3, stop=["a"])
    body = _body(model, stop=["b"], model="gpt-4.1", temperature=1.0, seed=1)
    assert body["model"] == "gpt-4.1"
    assert body["stop"] == ["b"]
    assert body["temperature"] == 1.0
    assert body["seed"] == 1


def test_extra_body_is_merged_instance_then_call():
    model = _model(extra_body={"top_k": 5, "thinking": {"type": "enabled"}})
    body = _body(model, extra_body={"top_k": 9})
    assert body["top_k"] == 9
    assert body["thinking"] == {"type": "enabled"}
    assert "extra_body" not in body


def test_unknown_kwarg_warns_and_lands_in_model_kwargs():
    with pytest.warns(UserWarning, match="'top_k' is not a ChatHolySheep parameter"):
        model = _model(top_k=4)
    assert model.model_kwargs == {"top_k": 4}
    assert _body(model)["top_k"] == 4


def test_stream_body_asks_for_usage():
    body = _body(_model(), stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in _body(_model(stream_usage=False), stream=True)
    assert "stream_options" not in _body(_model(), stream=True, stream_usage=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"n": 0}, "n"),
        ({"top_p": 1.5}, "top_p"),
        ({"base_url": "ftp://api.holysheep.ai/v1"}, "http"),
        ({"base_url": "api.holysheep.ai/v1"}, "http"),
        ({"base_url": "https:///v1"}, "host"),
        ({"base_url": "https://api.holysheep.ai"}, "Anthropic-native"),
        ({"n": 2, "streaming": True}, "n > 1"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        _model(**kwargs)


def test_plain_http_to_remote_host_warns():
    with pytest.warns(UserWarning, match="unencrypted"):
        _model(base_url="http://gateway.example.com/v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model(base_url="http://127.0.0.1:8080/v1")
        _model(base_url="http://localhost:8080/v1")
        _model(base_url="http://[::1]:8080/v1")


def test_missing_key_is_a_clear_error_at_first_call():
    model = ChatHolySheep()  # constructing does no I/O and needs no key
    with pytest.raises(HolySheepMissingAPIKeyError, match="HOLYSHEEP_API_KEY"):
        model.invoke("hi")


def test_key_never_in_repr_str_or_dumps():
    model = _model()
    for text in (repr(model), str(model), dumps(model), str(dumpd(model))):
        assert KEY not in text
    assert dumpd(model)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["HOLYSHEEP_API_KEY"],
    }


def test_key_not_in_langsmith_params():
    params = _model()._get_ls_params(stop=["x"])
    assert KEY not in str(params)
    assert params["ls_provider"] == "holysheep"
    assert params["ls_model_name"] == "mistral-small-2603"
    assert params["ls_model_type"] == "chat"
    assert params["ls_stop"] == ["x"]
    assert _model()._get_ls_params(model="gpt-4.1")["ls_model_name"] == "gpt-4.1"


def test_identifying_params_cover_output_changing_fields():
    params = _model(temperature=0.5, extra_body={"top_k": 2})._identifying_params
    assert params["model"] == "mistral-small-2603"
    assert params["temperature"] == 0.5
    assert params["extra_body"] == {"top_k": 2}
    assert params["base_url"] == DEFAULT_BASE_URL
    assert KEY not in str(params)


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_serialization_round_trip(monkeypatch):
    monkeypatch.setenv("HOLYSHEEP_API_KEY", KEY)
    model = _model(model="gpt-4.1", temperature=0.2)
    loaded = load(
        dumpd(model),
        allowed_objects=[ChatHolySheep],
        valid_namespaces=["langchain_holysheep"],
    )
    assert isinstance(loaded, ChatHolySheep)
    assert loaded.model_name == "gpt-4.1"
    assert loaded.temperature == 0.2
    assert loaded.api_key.get_secret_value() == KEY


def test_pickle_round_trip_takes_the_key_from_the_environment(monkeypatch):
    model = _model(model="deepseek-v3.2", max_tokens=10)
    data = pickle.dumps(model)
    assert KEY.encode() not in data
    monkeypatch.setenv("HOLYSHEEP_API_KEY", KEY)
    clone = pickle.loads(data)  # noqa: S301 (our own bytes)
    assert clone.model_name == "deepseek-v3.2"
    assert clone.max_tokens == 10
    assert clone.api_key.get_secret_value() == KEY


def test_unpickled_without_a_key_says_how_to_fix_it():
    clone = pickle.loads(pickle.dumps(_model()))  # noqa: S301 (our own bytes)
    assert clone.api_key is None
    with pytest.raises(HolySheepMissingAPIKeyError, match="HOLYSHEEP_API_KEY"):
        clone.invoke("hi")


def test_token_counting_is_offline():
    model = _model()
    assert model.get_num_tokens("hello world, how are you?") > 0
    assert model.get_num_tokens_from_messages(HI) > 0


def test_base_url_from_env_is_validated(monkeypatch):
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", "ftp://gateway.example.com/v1")
    with pytest.raises(ValidationError, match="http"):
        ChatHolySheep(api_key=KEY)
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", "https://gateway.example.com/v1/")
    assert ChatHolySheep(api_key=KEY).base_url == "https://gateway.example.com/v1"
