"""HolySheepEmbeddings without the network: the standard unit suite and pure helpers."""

from __future__ import annotations

import base64
import json
import struct
import sys
import warnings

import pytest
from langchain_core.load import dumpd, dumps
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import ValidationError

from langchain_holysheep import ChatHolySheep
from langchain_holysheep import embeddings as embeddings_module
from langchain_holysheep._settings import DEFAULT_BASE_URL, check_base_url
from langchain_holysheep.embeddings import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_EMBEDDING_MODEL,
    MAX_CHUNK_SIZE,
    HolySheepEmbeddings,
    _batches,
    _decode_vector,
    _parse_response,
)
from langchain_holysheep.errors import (
    HolySheepInputError,
    HolySheepMissingAPIKeyError,
    HolySheepResponseError,
)

KEY = "cr_unit_secret_key_123456"


class TestHolySheepEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[HolySheepEmbeddings]:
        return HolySheepEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": "text-embedding-3-small", "api_key": KEY}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return (
            {
                "HOLYSHEEP_API_KEY": "cr_from_env_key",
                "HOLYSHEEP_BASE_URL": "https://gateway.example.com/v1/",
            },
            {"model": "text-embedding-3-large"},
            {
                "api_key": "cr_from_env_key",
                "base_url": "https://gateway.example.com/v1",
                "model_name": "text-embedding-3-large",
            },
        )


def test_standard_suite_params_are_not_vacuous():
    """test_init_from_env skips on empty params: pin that ours are not empty."""
    env, params, expected = TestHolySheepEmbeddingsStandard().init_from_env_params
    assert env
    assert params
    assert set(expected) >= {"api_key", "base_url", "model_name"}


# ---------------------------------------------------------------- construction
def test_defaults(monkeypatch):
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    monkeypatch.delenv("HOLYSHEEP_BASE_URL", raising=False)
    emb = HolySheepEmbeddings()
    assert emb.model_name == DEFAULT_EMBEDDING_MODEL == "text-embedding-3-small"
    assert emb.base_url == DEFAULT_BASE_URL
    assert emb.api_key is None
    assert emb.chunk_size == DEFAULT_CHUNK_SIZE == 256
    assert emb.dimensions is None
    assert emb.max_concurrency == 4
    assert emb.max_retries == 2
    assert emb.timeout > 0


def test_model_alias_and_field_name_both_work():
    assert HolySheepEmbeddings(model="m-1", api_key=KEY).model_name == "m-1"
    assert HolySheepEmbeddings(model_name="m-2", api_key=KEY).model_name == "m-2"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chunk_size", 0),
        ("chunk_size", MAX_CHUNK_SIZE + 1),
        ("max_concurrency", 0),
        ("dimensions", 0),
        ("timeout", 0),
        ("max_retries", -1),
    ],
)
def test_out_of_range_settings_are_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        HolySheepEmbeddings(api_key=KEY, **{field: value})


def test_unknown_argument_is_rejected_not_dropped():
    with pytest.raises(ValidationError, match="chunksize"):
        HolySheepEmbeddings(api_key=KEY, chunksize=10)


def test_base_url_is_validated_like_the_chat_model():
    with pytest.raises(ValidationError, match="http"):
        HolySheepEmbeddings(api_key=KEY, base_url="api.holysheep.ai/v1")
    with pytest.raises(ValidationError, match="Anthropic-native"):
        HolySheepEmbeddings(api_key=KEY, base_url="https://api.holysheep.ai")
    with pytest.warns(UserWarning, match="plain http") as record:
        HolySheepEmbeddings(api_key=KEY, base_url="http://gateway.example.com/v1")
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="plain http") as record:
        ChatHolySheep(api_key=KEY, base_url="http://gateway.example.com/v1")
    assert record[0].filename == __file__  # the line that builds the model
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb = HolySheepEmbeddings(api_key=KEY, base_url="http://127.0.0.1:9/v1/")
    assert emb.base_url == "http://127.0.0.1:9/v1"


def test_base_url_from_the_environment_is_validated_too(monkeypatch):
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", "ftp://gateway.example.com/v1")
    with pytest.raises(ValidationError, match="http"):
        HolySheepEmbeddings(api_key=KEY)
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", "https://gateway.example.com/v1/")
    assert HolySheepEmbeddings(api_key=KEY).base_url == "https://gateway.example.com/v1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.holysheep.ai/v1/", "https://api.holysheep.ai/v1"),
        ("http://localhost:8080/v1", "http://localhost:8080/v1"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
    ],
)
def test_check_base_url_normalises(url, expected):
    assert check_base_url(url) == expected


def test_key_never_in_repr_str_or_serialized_output():
    emb = HolySheepEmbeddings(api_key=KEY)
    assert KEY not in repr(emb)
    assert KEY not in str(emb)
    assert KEY not in emb.model_dump_json()
    assert KEY not in json.dumps(dumpd(emb))
    assert KEY not in dumps(emb)
    assert emb.api_key is not None
    assert emb.api_key.get_secret_value() == KEY


def test_missing_key_raises_typed_error_at_first_call_not_at_construction(
    monkeypatch,
):
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    emb = HolySheepEmbeddings()
    with pytest.raises(HolySheepMissingAPIKeyError, match="HOLYSHEEP_API_KEY"):
        emb.embed_query("hello")
    with pytest.raises(HolySheepMissingAPIKeyError):
        emb.embed_documents(["hello"])


async def test_missing_key_raises_typed_error_async(monkeypatch):
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    with pytest.raises(HolySheepMissingAPIKeyError):
        await HolySheepEmbeddings().aembed_documents(["hello"])


async def test_empty_list_returns_empty_without_touching_the_client(monkeypatch):
    """No key and no gateway: an empty list must not even build a client."""
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    emb = HolySheepEmbeddings()
    assert emb.embed_documents([]) == []
    assert await emb.aembed_documents([]) == []


# -------------------------------------------------------------------- batching
def test_batches_split_by_size_and_keep_order():
    texts = [f"t{i}" for i in range(7)]
    assert _batches(texts, 3) == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]
    assert _batches(texts, 7) == [texts]
    assert _batches([], 3) == []


def test_batches_keep_empty_strings():
    assert _batches(["", "a", ""], 2) == [["", "a"], [""]]


def test_non_string_input_is_a_typed_error():
    with pytest.raises(HolySheepInputError, match=r"Text 1 is a int"):
        _batches(["a", 3], 10)  # type: ignore[list-item]
    emb = HolySheepEmbeddings(api_key=KEY)
    with pytest.raises(HolySheepInputError, match="not a str"):
        emb.embed_documents([None])  # type: ignore[list-item]


def test_a_bare_string_is_a_typed_error_not_one_request_per_character():
    with pytest.raises(HolySheepInputError, match="embed_query"):
        HolySheepEmbeddings(api_key=KEY).embed_documents("hello")  # type: ignore[arg-type]


# -------------------------------------------------------------------- decoding
def _b64(values, fmt="<"):
    return base64.b64encode(struct.pack(f"{fmt}{len(values)}f", *values)).decode()


def test_decode_base64_little_endian_float32():
    values = [0.5, -1.25, 3.0, 1e-3]
    decoded = _decode_vector(_b64(values), None)
    expected = list(struct.unpack("<4f", struct.pack("<4f", *values)))
    assert decoded == expected
    assert all(type(v) is float for v in decoded)


def test_decode_swaps_bytes_on_a_big_endian_host(monkeypatch):
    """On a big-endian host array('f') reads native order: the swap must run."""
    monkeypatch.setattr(embeddings_module, "_NATIVE_BIG_ENDIAN", True)
    packed_le = struct.pack("<2f", 1.5, -2.0)
    # On this (little-endian) host, the swap reinterprets the bytes as big-endian,
    # which is exactly what a big-endian host reading the wire natively must undo.
    expected = list(
        struct.unpack(f"{'>' if sys.byteorder == 'little' else '<'}2f", packed_le)
    )
    assert _decode_vector(base64.b64encode(packed_le).decode(), None) == expected


def test_decode_accepts_plain_float_lists():
    assert _decode_vector([1, 0.5, -2], None) == [1.0, 0.5, -2.0]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("not base64!!", "not valid base64"),
        (base64.b64encode(b"\x00\x01\x02").decode(), "whole number of float32"),
        ([1.0, "x"], "neither base64 nor a list"),
        ([True, 1.0], "neither base64 nor a list"),
        (None, "neither base64 nor a list"),
    ],
)
def test_decode_rejects_malformed_vectors(raw, match):
    with pytest.raises(HolySheepResponseError, match=match):
        _decode_vector(raw, {"data": []})


def _item(index, values):
    return {"object": "embedding", "index": index, "embedding": _b64(values)}


def test_parse_response_sorts_by_index():
    data = {"data": [_item(2, [2.0]), _item(0, [0.0]), _item(1, [1.0])]}
    assert _parse_response(data, 3, None) == [[0.0], [1.0], [2.0]]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"object": "list"}, "no 'data' list"),
        ("<html>oops</html>", "no 'data' list"),
        ({"data": ["x"]}, "not an object"),
        ({"data": [_item(0, [1.0])]}, "1 embeddings for 2 inputs"),
        ({"data": [_item(0, [1.0]), _item(0, [2.0])]}, "duplicate"),
        ({"data": [_item(0, [1.0]), _item(5, [2.0])]}, "out-of-range"),
    ],
)
def test_parse_response_rejects_gaps_and_garbage(data, match):
    with pytest.raises(HolySheepResponseError, match=match):
        _parse_response(data, 2, None)


def test_parse_response_rejects_ignored_dimensions():
    data = {"data": [_item(0, [1.0, 0.0, 0.0])]}
    with pytest.raises(HolySheepResponseError, match="dimensions=2"):
        _parse_response(data, 1, 2)
    assert _parse_response(data, 1, 3) == [[1.0, 0.0, 0.0]]
