"""HolySheepEmbeddings over real HTTP against the offline gateway."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest
from langchain_core.exceptions import ContextOverflowError, ModelError
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._client import get_async_client, get_sync_client
from langchain_holysheep.embeddings import HolySheepEmbeddings
from langchain_holysheep.errors import (
    HolySheepAuthenticationError,
    HolySheepBadRequestError,
    HolySheepContextOverflowError,
    HolySheepModelNotFoundError,
    HolySheepRateLimitError,
    HolySheepResponseError,
    HolySheepServerError,
)
from langchain_holysheep.testing import Fault, Reply, embed_text

KEY = "cr_integration_secret_987654"
EMBEDDINGS_PATH = "/v1/embeddings"


class TestHolySheepEmbeddingsOffline(EmbeddingsIntegrationTests):
    """The langchain-tests suite, every call answered by the offline gateway."""

    @property
    def embeddings_class(self) -> type[HolySheepEmbeddings]:
        return HolySheepEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": "text-embedding-3-small", "api_key": KEY, "max_retries": 0}

    @pytest.fixture
    def model(self, holysheep_gateway):
        emb = self.embeddings_class(
            **self.embedding_model_params, base_url=holysheep_gateway.base_url
        )
        yield emb
        # The suite's checks must have been answered by the gateway, nothing else.
        requests = holysheep_gateway.requests
        assert requests
        assert all(r.path == EMBEDDINGS_PATH for r in requests)
        for request in requests:
            assert request.body is not None
            assert request.body["model"] == "text-embedding-3-small"


@pytest.fixture
def gw(holysheep_gateway):
    return holysheep_gateway


def make(gw, **kwargs):
    kwargs.setdefault("max_retries", 0)
    return HolySheepEmbeddings(base_url=gw.base_url, api_key=KEY, **kwargs)


def embedding_bodies(gw):
    return [r.body for r in gw.requests if r.path == EMBEDDINGS_PATH]


TEXTS = [f"document number {i} about topic {i % 3}" for i in range(7)]


# ----------------------------------------------------------- the wire format
def test_requests_base64_and_decodes_to_the_gateway_vectors(gw):
    vectors = make(gw).embed_documents(["sheep eat grass", "wool is warm"])
    assert vectors == [embed_text("sheep eat grass"), embed_text("wool is warm")]
    (body,) = embedding_bodies(gw)
    assert body == {
        "model": "text-embedding-3-small",
        "input": ["sheep eat grass", "wool is warm"],
        "encoding_format": "base64",
    }
    assert gw.last_request.headers["authorization"] == f"Bearer {KEY}"


def test_embed_query_sends_one_input(gw):
    assert make(gw).embed_query("a single query") == embed_text("a single query")
    assert [b["input"] for b in embedding_bodies(gw)] == [["a single query"]]


async def test_aembed_query_sends_one_input(gw):
    assert await make(gw).aembed_query("async query") == embed_text("async query")
    assert [b["input"] for b in embedding_bodies(gw)] == [["async query"]]


def test_dimensions_are_sent_and_honoured(gw):
    vectors = make(gw, dimensions=64).embed_documents(["short vectors please"])
    assert vectors == [embed_text("short vectors please", 64)]
    assert len(vectors[0]) == 64
    assert embedding_bodies(gw)[0]["dimensions"] == 64


def test_model_id_is_sent(gw):
    make(gw, model="text-embedding-3-large").embed_query("x")
    assert embedding_bodies(gw)[0]["model"] == "text-embedding-3-large"


# ----------------------------------------------------------------- batching
def test_batches_by_chunk_size_in_order(gw):
    vectors = make(gw, chunk_size=3).embed_documents(TEXTS)
    assert [b["input"] for b in embedding_bodies(gw)] == [
        TEXTS[0:3],
        TEXTS[3:6],
        TEXTS[6:7],
    ]
    assert vectors == [embed_text(t) for t in TEXTS]


async def test_async_batches_by_chunk_size(gw):
    vectors = await make(gw, chunk_size=3).aembed_documents(TEXTS)
    inputs = sorted(
        (b["input"] for b in embedding_bodies(gw)),
        key=lambda batch: TEXTS.index(batch[0]),
    )
    assert inputs == [TEXTS[0:3], TEXTS[3:6], TEXTS[6:7]]
    assert vectors == [embed_text(t) for t in TEXTS]


async def test_async_order_preserved_when_a_batch_finishes_last(gw):
    # The first batch to arrive is held back, so it completes after the others.
    gw.enqueue(Reply(delay_before_headers=0.3), endpoint="embeddings")
    vectors = await make(gw, chunk_size=1, max_concurrency=7).aembed_documents(TEXTS)
    assert len(embedding_bodies(gw)) == 7
    assert vectors == [embed_text(t) for t in TEXTS]


def test_empty_list_sends_no_request(gw):
    assert make(gw).embed_documents([]) == []
    assert gw.requests == []


async def test_empty_list_sends_no_request_async(gw):
    assert await make(gw).aembed_documents([]) == []
    assert gw.requests == []


def test_empty_string_is_passed_through(gw):
    """The offline gateway embeds "" as [1, 0, 0, ...]; nothing is dropped."""
    vectors = make(gw).embed_documents(["", "not empty", ""])
    assert embedding_bodies(gw)[0]["input"] == ["", "not empty", ""]
    assert vectors[0] == vectors[2] == embed_text("")
    assert vectors[0][:2] == [1.0, 0.0]
    assert vectors[1] == embed_text("not empty")


class GateTransport(httpx2.AsyncBaseTransport):
    """Counts requests in flight; holds each until ``open_at`` are in flight."""

    def __init__(self, open_at):
        self.inner = httpx2.AsyncHTTPTransport()
        self.open_at = open_at
        self.in_flight = 0
        self.peak = 0
        self.calls = 0
        self.gate = asyncio.Event()

    async def handle_async_request(self, request):
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.in_flight >= self.open_at:
                self.gate.set()
            # Safety valve only: if the bound were lower than open_at the gate
            # would never open and the request fails instead of hanging.
            await asyncio.wait_for(self.gate.wait(), timeout=10)
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    async def aclose(self):
        await self.inner.aclose()


async def test_async_concurrency_is_bounded_by_max_concurrency(gw):
    transport = GateTransport(open_at=3)
    async with openai.DefaultAsyncHttpxClient(transport=transport) as http:
        emb = make(gw, chunk_size=2, max_concurrency=3, http_async_client=http)
        texts = [f"text {i}" for i in range(20)]
        vectors = await emb.aembed_documents(texts)
    assert vectors == [embed_text(t) for t in texts]
    assert transport.calls == 10
    assert transport.peak == 3  # reached the bound (the gate needs 3) and never above
    assert len(embedding_bodies(gw)) == 10


async def test_async_failure_cancels_the_batches_not_yet_sent(gw):
    gw.enqueue(Fault(status=400, message="bad batch"), endpoint="embeddings")
    emb = make(gw, chunk_size=1, max_concurrency=1)
    with pytest.raises(HolySheepBadRequestError, match="bad batch"):
        await emb.aembed_documents(TEXTS)
    # No batch task outlives the call (asyncio.gather alone would leave six
    # running in the background, each sending its request).
    leftovers = [
        task
        for task in asyncio.all_tasks()
        if "aembed_documents" in task.get_coro().__qualname__
    ]
    assert leftovers == []
    # One failed request, at most one more already on its way; not all seven.
    assert 1 <= len(embedding_bodies(gw)) <= 2


# ------------------------------------------------------------------- errors
def test_oversized_input_is_a_context_overflow_error(gw):
    huge = "word " * 9000
    with pytest.raises(HolySheepContextOverflowError) as info:
        make(gw).embed_documents(["fine", huge])
    assert isinstance(info.value, ContextOverflowError)
    assert isinstance(info.value, openai.BadRequestError)
    assert "maximum context length" in str(info.value)


async def test_oversized_input_is_a_context_overflow_error_async(gw):
    with pytest.raises(HolySheepContextOverflowError):
        await make(gw).aembed_query("word " * 9000)


def test_bad_key_is_an_authentication_error_without_the_key(gw):
    gw.api_key = "cr_the_right_key_000000"
    with pytest.raises(HolySheepAuthenticationError) as info:
        make(gw).embed_query("hello")
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.body)


def test_key_echoed_by_the_gateway_is_masked(gw):
    gw.enqueue(Fault(status=400, message=f"key {KEY} is odd"), endpoint="embeddings")
    with pytest.raises(HolySheepBadRequestError) as info:
        make(gw).embed_query("hello")
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.body)


def test_unknown_model_is_model_not_found(gw):
    gw.strict_models = True
    with pytest.raises(HolySheepModelNotFoundError, match="no-such-embedder"):
        make(gw, model="no-such-embedder").embed_query("hello")


def test_rate_limit_carries_retry_after(gw):
    gw.enqueue(Fault(status=429, headers={"Retry-After": "7"}), endpoint="embeddings")
    with pytest.raises(HolySheepRateLimitError) as info:
        make(gw).embed_query("hello")
    assert info.value.retry_after == 7.0
    assert info.value.is_retryable


def test_server_error_is_retried_by_the_sdk(gw):
    gw.enqueue(Fault(status=503), endpoint="embeddings")
    vector = make(gw, max_retries=1).embed_query("hello again")
    assert vector == embed_text("hello again")
    assert len(embedding_bodies(gw)) == 2


def test_server_error_without_retries_is_typed(gw):
    gw.enqueue(Fault(status=500), endpoint="embeddings")
    with pytest.raises(HolySheepServerError) as info:
        make(gw).embed_query("hello")
    assert isinstance(info.value, ModelError)


def test_error_in_a_later_batch_raises_rather_than_returning_a_prefix(gw):
    gw.enqueue(Reply(), Fault(status=500), endpoint="embeddings")
    with pytest.raises(HolySheepServerError):
        make(gw, chunk_size=3).embed_documents(TEXTS)
    assert len(embedding_bodies(gw)) == 2


def test_html_page_with_status_200_is_a_response_error(gw):
    gw.enqueue(
        Fault(status=200, body="<html>maintenance</html>", content_type="text/html"),
        endpoint="embeddings",
    )
    with pytest.raises(HolySheepResponseError, match="no 'data' list"):
        make(gw).embed_query("hello")


def test_gateway_ignoring_dimensions_is_reported(gw):
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
        "model": "text-embedding-3-small",
    }
    gw.enqueue(Fault(status=200, body=body), endpoint="embeddings")
    with pytest.raises(HolySheepResponseError, match="dimensions=3"):
        make(gw, dimensions=3).embed_query("hello")


def test_float_encoded_response_is_accepted(gw):
    """Routes that ignore encoding_format and send floats still work."""
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
            {"object": "embedding", "index": 0, "embedding": [0.6, 0.8]},
        ],
        "model": "text-embedding-3-small",
    }
    gw.enqueue(Fault(status=200, body=body), endpoint="embeddings")
    assert make(gw).embed_documents(["a", "b"]) == [[0.6, 0.8], [0.0, 1.0]]


# ------------------------------------------------------------------ clients
def test_shares_the_chat_models_connection_pool(gw):
    emb = make(gw)
    chat = ChatHolySheep(base_url=gw.base_url, api_key=KEY)
    assert get_sync_client(emb._client_config(None)) is get_sync_client(
        chat._client_config(None)
    )


async def test_shares_the_chat_models_async_pool_on_a_loop(gw):
    emb = make(gw)
    chat = ChatHolySheep(base_url=gw.base_url, api_key=KEY)
    assert await get_async_client(emb._client_config(None)) is await get_async_client(
        chat._client_config(None)
    )


def test_user_http_client_is_used_and_left_open(gw):
    with openai.DefaultHttpxClient() as http:
        emb = make(gw, http_client=http, default_headers={"x-team": "rag"})
        assert emb.embed_query("via my client") == embed_text("via my client")
        emb.close()
        assert not http.is_closed
    assert gw.last_request.headers["x-team"] == "rag"


async def test_aclose_then_reuse(gw):
    emb = make(gw)
    assert await emb.aembed_query("one") == embed_text("one")
    await emb.aclose()
    assert await emb.aembed_query("two") == embed_text("two")
    assert len(embedding_bodies(gw)) == 2


def test_embeddings_from_environment(holysheep_env):
    emb = HolySheepEmbeddings()
    assert emb.embed_query("from env") == embed_text("from env")
    assert holysheep_env.last_request.headers["authorization"].startswith("Bearer cr_")
