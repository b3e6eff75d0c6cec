"""HolySheepEmbeddings against the real gateway (needs HOLYSHEEP_API_KEY).

Skipped cleanly without a key. Set HOLYSHEEP_EMBEDDING_MODEL to try another model.
"""

from __future__ import annotations

import math
import os

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_holysheep.embeddings import DEFAULT_EMBEDDING_MODEL, HolySheepEmbeddings
from langchain_holysheep.errors import HolySheepBadRequestError

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not os.environ.get("HOLYSHEEP_API_KEY"),
        reason="HOLYSHEEP_API_KEY is not set: live gateway tests skipped",
    ),
]

MODEL = os.environ.get("HOLYSHEEP_EMBEDDING_MODEL", DEFAULT_EMBEDDING_MODEL)


class TestHolySheepEmbeddingsLive(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[HolySheepEmbeddings]:
        return HolySheepEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": MODEL}


def test_live_batches_keep_order_and_agree_with_single_queries():
    emb = HolySheepEmbeddings(model=MODEL, chunk_size=2)
    texts = ["sheep grow wool", "volcanoes erupt", "tea is oxidised"]
    batched = emb.embed_documents(texts)
    singles = [emb.embed_query(t) for t in texts]
    for a, b in zip(batched, singles, strict=True):
        cosine = sum(x * y for x, y in zip(a, b, strict=True)) / (
            math.hypot(*a) * math.hypot(*b)
        )
        assert cosine > 0.99


def test_live_dimensions():
    vector = HolySheepEmbeddings(model=MODEL, dimensions=256).embed_query("sheep")
    assert len(vector) == 256


def test_live_empty_string_behaviour_is_documented():
    """docs/embeddings.md: "" is passed through; the gateway embeds it or says 400."""
    emb = HolySheepEmbeddings(model=MODEL)
    try:
        vector = emb.embed_query("")
    except HolySheepBadRequestError:
        return
    assert vector
    assert all(isinstance(v, float) for v in vector)
