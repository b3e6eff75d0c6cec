"""The error tree: every SDK error is mapped, and no key survives the mapping."""

import inspect
import json

import httpx2
import openai
import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from langchain_holysheep import errors
from langchain_holysheep.errors import (
    MAPPED_SDK_ERRORS,
    HolySheepError,
    mask_secrets,
    retry_after_seconds,
    to_holysheep_error,
    translate_errors,
)

KEY = "cr_live_0123456789abcdef"
REQUEST = httpx2.Request("POST", "https://api.holysheep.ai/v1/chat/completions")


def _status(cls, status, body=None, headers=None, message="boom"):
    response = httpx2.Response(status, request=REQUEST, headers=headers or {})
    return cls(message, response=response, body=body)


def test_every_sdk_error_class_has_an_explicit_mapping():
    """A new openai error class must get a conscious decision, not a fallthrough."""
    exported = {
        obj
        for name, obj in inspect.getmembers(openai, inspect.isclass)
        # Private classes (``openai._AmbiguousModuleClientUsageError``) concern the
        # SDK's module-level client, which this package never uses.
        if issubclass(obj, openai.OpenAIError) and not name.startswith("_")
    }
    assert exported, "the SDK exports no error classes?"
    assert exported <= MAPPED_SDK_ERRORS, exported - MAPPED_SDK_ERRORS


@pytest.mark.parametrize(
    ("sdk_cls", "status", "sdk_base", "core_base"),
    [
        (openai.BadRequestError, 400, openai.BadRequestError, ModelInvalidRequestError),
        (
            openai.AuthenticationError,
            401,
            openai.AuthenticationError,
            ModelAuthenticationError,
        ),
        (
            openai.PermissionDeniedError,
            403,
            openai.PermissionDeniedError,
            ModelPermissionDeniedError,
        ),
        (openai.NotFoundError, 404, openai.NotFoundError, ModelNotFoundError),
        (openai.ConflictError, 409, openai.ConflictError, ModelAPIError),
        (
            openai.UnprocessableEntityError,
            422,
            openai.UnprocessableEntityError,
            ModelInvalidRequestError,
        ),
        (openai.RateLimitError, 429, openai.RateLimitError, ModelRateLimitError),
        (openai.InternalServerError, 503, openai.InternalServerError, ModelAPIError),
        (openai.APIStatusError, 402, openai.APIStatusError, ModelError),
    ],
)
def test_status_errors_keep_both_families(sdk_cls, status, sdk_base, core_base):
    mapped = to_holysheep_error(_status(sdk_cls, status), KEY)
    assert isinstance(mapped, sdk_base)
    assert isinstance(mapped, core_base)
    assert isinstance(mapped, HolySheepError)
    assert mapped.status_code == status


def test_connection_and_timeout_errors():
    conn = to_holysheep_error(openai.APIConnectionError(request=REQUEST), None)
    assert isinstance(conn, openai.APIConnectionError)
    assert isinstance(conn, ModelConnectionError)
    assert conn.is_retryable
    timeout = to_holysheep_error(openai.APITimeoutError(request=REQUEST), None)
    assert isinstance(timeout, openai.APITimeoutError)
    assert isinstance(timeout, ModelTimeoutError)
    assert isinstance(timeout, errors.HolySheepConnectionError)


def test_bare_api_error_is_an_in_stream_error():
    sdk = openai.APIError("upstream died", REQUEST, body={"message": "upstream died"})
    mapped = to_holysheep_error(sdk, None)
    assert isinstance(mapped, errors.HolySheepStreamError)
    assert "upstream died" in str(mapped)
    assert mapped.is_retryable


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"code": "context_length_exceeded", "message": "nope"}, "nope"),
        (None, "This model's maximum context length is 128000 tokens."),
        ({"message": "Prompt is too long: 300000 tokens"}, "invalid request"),
    ],
)
def test_context_overflow_detected_by_code_or_text(body, message):
    mapped = to_holysheep_error(
        _status(openai.BadRequestError, 400, body=body, message=message), None
    )
    assert isinstance(mapped, errors.HolySheepContextOverflowError)
    assert isinstance(mapped, ContextOverflowError)
    assert isinstance(mapped, openai.BadRequestError)


def test_ordinary_bad_request_is_not_context_overflow():
    mapped = to_holysheep_error(
        _status(openai.BadRequestError, 400, message="temperature is invalid"), None
    )
    assert type(mapped) is errors.HolySheepBadRequestError


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({}, None),
        ({"x-ratelimit-reset-requests": "1.5s"}, 1.5),
        ({"x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"x-ratelimit-reset-requests": "1h2m3s"}, 3723.0),
        ({"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "5s"}, 5.0),
        (
            {
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-tokens": "5s",
                "x-ratelimit-remaining-tokens": "900",
            },
            2.0,
        ),
        ({"retry-after": "3", "x-ratelimit-reset-requests": "9s"}, 3.0),
        ({"x-ratelimit-reset-requests": "soon"}, None),
        ({"x-ratelimit-reset-requests": "5"}, None),
    ],
)
def test_retry_after(headers, expected):
    assert retry_after_seconds(headers) == expected
    mapped = to_holysheep_error(
        _status(openai.RateLimitError, 429, headers=headers), None
    )
    assert mapped.retry_after == expected


def test_other_statuses_retryability():
    assert to_holysheep_error(_status(openai.APIStatusError, 408), None).is_retryable
    assert not to_holysheep_error(
        _status(openai.APIStatusError, 402), None
    ).is_retryable


def test_keys_are_masked_in_messages_and_bodies():
    body = {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}
    mapped = to_holysheep_error(
        _status(openai.AuthenticationError, 401, body=body, message=body["message"]),
        KEY,
    )
    assert KEY not in str(mapped)
    assert KEY not in repr(mapped.args)
    assert KEY not in json.dumps(mapped.body)
    other = "sk-proj-abcdefghijklmnop"
    assert other not in mask_secrets(f"key {other} leaked")


def test_translate_errors_maps_and_chains():
    with pytest.raises(errors.HolySheepRateLimitError) as caught, translate_errors(KEY):
        raise _status(openai.RateLimitError, 429)
    assert isinstance(caught.value.__cause__, openai.RateLimitError)


def test_translate_errors_keeps_partial_text():
    with (
        pytest.raises(errors.HolySheepConnectionError) as caught,
        translate_errors(None, partial=lambda: "half an ans"),
    ):
        raise openai.APIConnectionError(request=REQUEST)
    assert caught.value.partial_text == "half an ans"


def test_translate_errors_names_a_malformed_chunk():
    with (
        pytest.raises(errors.HolySheepResponseError, match="not valid JSON") as caught,
        translate_errors(None),
    ):
        json.loads('{"choices": [ {bad')
    assert '{"choices": [ {bad' in str(caught.value)


def test_translate_errors_leaves_other_exceptions_alone():
    with pytest.raises(KeyError), translate_errors(None):
        raise KeyError("x")


def test_missing_key_error_names_the_variable():
    error = errors.HolySheepMissingAPIKeyError()
    assert "HOLYSHEEP_API_KEY" in str(error)
    assert isinstance(error, ModelAuthenticationError)
    assert isinstance(error, openai.OpenAIError)


def test_exported_names():
    for name in errors.__all__:
        assert hasattr(errors, name)
