"""The credential rule (``_secrets``): which names are credentials, how masked."""

import base64

import pytest

from langchain_holysheep._secrets import (
    MASK,
    credential_values,
    is_credential_header,
    is_credential_param,
    mask_headers,
    mask_input,
    mask_query,
    mask_settings,
    mask_text,
    mask_url,
    placeholder_slot,
    restore_credentials,
    secret_id,
    serialize_credentials,
    serialized_secret_fields,
    url_has_credentials,
)

CREDENTIAL_HEADERS = [
    "Authorization",
    "authorization",
    "Proxy-Authorization",
    "Cookie",
    "Set-Cookie",
    "set_cookie",
    "X-Api-Key",
    "x_api_key",
    "XApiKey",
    "api-key",
    "Helicone-Auth",
    "cf-aig-authorization",
    "X-Proxy-Token",
    "X_CLIENT_SECRET",
    "X-Signature",
    "X-Pass-Word",
    "x-amz-security-token",
]
PLAIN_HEADERS = [
    "X-Request-Source",
    "Content-Type",
    "Accept",
    "User-Agent",
    "X-Title",
    "HTTP-Referer",
    "OpenAI-Beta",
    "X-Stainless-Lang",
    "Idempotency-Id",
    "x-ratelimit-remaining-tokens",  # rate-limit headers count tokens
    "x-ratelimit-reset-tokens",
]
CREDENTIAL_PARAMS = [
    "sig",
    "SIG",
    "signature",
    "X-Amz-Signature",
    "api_key",
    "apiKey",
    "key",
    "access_token",
    "token",
    "client_secret",
    "auth",
    "password",
]
PLAIN_PARAMS = ["v", "api-version", "model", "region", "format", "sign_in", "sigma"]


@pytest.mark.parametrize("name", CREDENTIAL_HEADERS)
def test_credential_headers(name):
    assert is_credential_header(name)


@pytest.mark.parametrize("name", PLAIN_HEADERS)
def test_headers_that_stay_readable(name):
    assert not is_credential_header(name)


@pytest.mark.parametrize("name", CREDENTIAL_PARAMS)
def test_credential_query_parameters(name):
    assert is_credential_param(name)


@pytest.mark.parametrize("name", PLAIN_PARAMS)
def test_query_parameters_that_stay_readable(name):
    assert not is_credential_param(name)


def test_cookie_is_a_credential_header_but_not_a_credential_parameter():
    assert is_credential_header("Cookie")
    assert not is_credential_param("cookie")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://alice:s3cret@relay.example/v1", "https://***:***@relay.example/v1"),
        ("https://alice@relay.example/v1", "https://***@relay.example/v1"),
        ("https://:pw@relay.example/v1", "https://***:***@relay.example/v1"),
        (
            "https://a:p%40ss@relay.example:8443/v1",
            "https://***:***@relay.example:8443/v1",
        ),
        ("redis://:hunter22@cache:6379/0", "redis://***:***@cache:6379/0"),
        ("rediss://user:pw@cache.example:6380", "rediss://***:***@cache.example:6380"),
        ("postgres://u:pw@db/app", "postgres://***:***@db/app"),
        (
            "https://h/v1/x?sig=abc&v=2&api_key=k1",
            "https://h/v1/x?sig=***&v=2&api_key=***",
        ),
        ("https://h/v1?X-Amz-Signature=ff&x=1", "https://h/v1?X-Amz-Signature=***&x=1"),
        (
            "https://h/cb#access_token=abc&state=s",
            "https://h/cb#access_token=***&state=s",
        ),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked
    assert url_has_credentials(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.holysheep.ai/v1",
        "http://127.0.0.1:8080/v1",
        "https://h/v1?v=2&model=x",
        "redis://cache:6379/0",
        "https://h/a:b/c",  # a colon in the path is not userinfo
        "not a url",
    ],
)
def test_urls_without_credentials_are_unchanged(url):
    assert mask_url(url) == url
    assert not url_has_credentials(url)


def test_mask_headers_and_query_keep_names_and_other_values():
    assert mask_headers(
        {"Helicone-Auth": "Bearer x", "X-Request-Source": "ci", "Cookie": "a=b"}
    ) == {"Helicone-Auth": MASK, "X-Request-Source": "ci", "Cookie": MASK}
    assert mask_query({"sig": "abc", "v": 2}) == {"sig": MASK, "v": 2}


def test_mask_settings_masks_the_connection_settings_only():
    settings = {
        "base_url": "https://u:p@h/v1",
        "default_headers": {"X-Api-Key": "k", "X-Title": "t"},
        "default_query": {"token": "t"},
        "api_key": "cr_plain_string",
        "temperature": 0,
    }
    assert mask_settings(settings) == {
        "base_url": "https://***:***@h/v1",
        "default_headers": {"X-Api-Key": MASK, "X-Title": "t"},
        "default_query": {"token": MASK},
        "api_key": MASK,
        "temperature": 0,
    }


def test_mask_text_masks_values_urls_bearer_tokens_and_key_shapes():
    text = (
        "POST https://alice:pw1234@relay.example/v1?sig=abcdef&v=1 failed: "
        "Authorization: Bearer abcdefghij; header X-Proxy-Token=proxytoken99; "
        "also cr_abcdefghijk and sk-proj-abcdefgh."
    )
    masked = mask_text(text, ["proxytoken99"])
    assert masked == (
        "POST https://***:***@relay.example/v1?sig=***&v=1 failed: "
        "Authorization: Bearer ***; header X-Proxy-Token=***; "
        "also cr_*** and sk-***."
    )


def test_mask_text_keeps_punctuation_after_a_url():
    masked = mask_text("failed (POST https://u:p@h/v1?sig=abc): refused.")
    assert masked == "failed (POST https://***:***@h/v1?sig=***): refused."


def test_mask_text_leaves_ordinary_text_alone():
    text = "Rate limit reached for gpt-4.1; retry after 3 s (see https://h/docs)."
    assert mask_text(text) == text


def test_credential_values_include_the_forms_they_travel_in():
    values = credential_values(
        api_key="cr_the_key_123",
        base_url="https://alice:p%40ssword@relay.example/v1",
        headers={"Helicone-Auth": "Bearer helicone-1234", "X-Title": "visible"},
        query={"sig": "a b/c"},
    )
    basic = base64.b64encode(b"alice:p@ssword").decode()
    for value in (
        "cr_the_key_123",
        "alice",
        "p@ssword",
        "p%40ssword",
        basic,
        "Bearer helicone-1234",
        "helicone-1234",
        "a b/c",
        "a%20b%2Fc",
        "a+b%2Fc",
    ):
        assert value in values
    assert "visible" not in values
    assert list(values) == sorted(values, key=len, reverse=True)


def test_credential_values_leave_out_very_short_values():
    assert credential_values(query={"sig": "ab"}, headers={"X-Api-Key": "***"}) == ()


@pytest.mark.parametrize(
    ("kwargs", "slot"),
    [
        ({"api_key": "**********"}, "api_key"),
        ({"base_url": "https://***:***@relay/v1"}, "the userinfo"),
        ({"base_url": "https://%2A%2A%2A@relay/v1"}, "the userinfo"),
        ({"headers": {"X-Api-Key": "***"}}, "default_headers['X-Api-Key']"),
        ({"query": {"sig": "***"}}, "default_query['sig']"),
    ],
)
def test_placeholder_slot_names_a_masked_placeholder(kwargs, slot):
    assert slot in (placeholder_slot(**kwargs) or "")


def test_placeholder_slot_accepts_real_values_and_plain_stars():
    assert (
        placeholder_slot(
            api_key="cr_real",
            base_url="https://u:p@relay/v1",
            headers={"X-Api-Key": "k", "X-Note": "***"},  # not a credential header
            query={"sig": "s"},
        )
        is None
    )


@pytest.mark.parametrize(
    ("field", "name", "expected"),
    [
        ("base_url", "", "HOLYSHEEP_BASE_URL"),
        ("default_headers", "Helicone-Auth", "HOLYSHEEP_HEADER_HELICONE_AUTH"),
        ("default_headers", "x.api.key", "HOLYSHEEP_HEADER_X_API_KEY"),
        ("default_query", "sig", "HOLYSHEEP_QUERY_SIG"),
    ],
)
def test_secret_ids(field, name, expected):
    assert secret_id(field, name) == expected


def test_serialize_credentials_puts_references_where_credentials_were():
    headers = {"Helicone-Auth": "Bearer h", "X-Title": "t"}
    query = {"sig": "s", "v": 2, "obj": ["x"]}
    kwargs = {"base_url": "https://u:p@h/v1", "default_headers": headers}
    serialize_credentials(kwargs, "https://u:p@h/v1", headers, query)
    ref = {"lc": 1, "type": "secret"}
    assert kwargs["base_url"] == {**ref, "id": ["HOLYSHEEP_BASE_URL"]}
    assert kwargs["default_headers"] == {
        "Helicone-Auth": {**ref, "id": ["HOLYSHEEP_HEADER_HELICONE_AUTH"]},
        "X-Title": "t",
    }
    assert kwargs["default_query"] == {
        "sig": {**ref, "id": ["HOLYSHEEP_QUERY_SIG"]},
        "v": 2,
        "obj": "['x']",  # as the wire sends it
    }
    assert headers == {"Helicone-Auth": "Bearer h", "X-Title": "t"}  # not changed
    assert set(serialized_secret_fields("https://u:p@h/v1", headers, query)) == {
        "base_url",
        "default_headers",
        "default_query",
    }


def test_serialize_credentials_leaves_credential_free_settings_alone():
    kwargs = {"base_url": "https://h/v1", "default_headers": {"X-Title": "t"}}
    serialize_credentials(kwargs, "https://h/v1", {"X-Title": "t"}, None)
    assert kwargs == {"base_url": "https://h/v1", "default_headers": {"X-Title": "t"}}
    assert serialized_secret_fields("https://h/v1", {"X-Title": "t"}, None) == {}


def test_restore_credentials_reads_each_missing_one_from_its_variable():
    values = {
        "base_url": None,
        "default_headers": {"Helicone-Auth": None, "X-Title": "t"},
        "default_query": {"sig": None},
    }
    environ = {
        "HOLYSHEEP_BASE_URL": "https://u:p@h/v1",
        "HOLYSHEEP_HEADER_HELICONE_AUTH": "Bearer h",
        "HOLYSHEEP_QUERY_SIG": "s",
    }
    assert restore_credentials(values, environ, "ChatHolySheep") == {
        "base_url": "https://u:p@h/v1",
        "default_headers": {"Helicone-Auth": "Bearer h", "X-Title": "t"},
        "default_query": {"sig": "s"},
    }


def test_restore_credentials_names_what_is_missing():
    values = {"default_headers": {"Helicone-Auth": None}}
    with pytest.raises(ValueError, match="HOLYSHEEP_HEADER_HELICONE_AUTH") as caught:
        restore_credentials(values, {}, "ChatHolySheep")
    assert "secrets_map" in str(caught.value)
    assert "default_headers['Helicone-Auth']" in str(caught.value)


@pytest.mark.parametrize(
    ("loc", "value", "masked"),
    [
        (("api_key",), "cr_abc", MASK),
        (("default_headers", "X-Api-Key"), 3, MASK),
        (("default_headers", "X-Title"), 3, 3),
        (("default_query", "sig"), ["x"], MASK),
        (("base_url",), "ftp://u:p@h/v1", "ftp://***:***@h/v1"),
        (("default_headers",), {"Cookie": "c", "A": "b"}, {"Cookie": MASK, "A": "b"}),
        (("temperature",), 5, 5),
        (
            (),
            {"base_url": "https://u:p@h/v1", "settings": {"api_key": "cr_x"}},
            {"base_url": "https://***:***@h/v1", "settings": {"api_key": MASK}},
        ),
    ],
)
def test_mask_input_masks_a_validation_errors_input(loc, value, masked):
    assert mask_input(loc, value) == masked
