"""``HolySheepEmbeddings``: the HolySheep gateway's embeddings for LangChain.

Same client layer as :class:`~langchain_holysheep.ChatHolySheep` (one shared
connection pool per gateway and key, async clients per event loop), same error
tree, same environment variables. Vectors travel base64-encoded (little-endian
float32, a third of the JSON size) and are decoded with the standard library.
"""

from __future__ import annotations

import array
import asyncio
import base64
import binascii
import sys
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from langchain_core.embeddings import Embeddings
from pydantic import ConfigDict, Field

from langchain_holysheep._client import (
    get_async_client,
    get_sync_client,
)
from langchain_holysheep._http import apost_json, post_json
from langchain_holysheep._settings import GatewaySettings

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import openai

    _BatchRequest = tuple[
        str,
        dict[str, Any],
        openai.RequestOptions,
        Callable[[object], list[list[float]]],
    ]


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EMBEDDING_MODEL",
    "MAX_CHUNK_SIZE",
    "HolySheepEmbeddings",
]

DEFAULT_EMBEDDING_MODEL: Final = "text-embedding-3-small"
DEFAULT_CHUNK_SIZE: Final = 256
MAX_CHUNK_SIZE: Final = 2048
"""The most inputs the OpenAI embeddings API accepts in one request."""
_EMBEDDINGS_PATH: Final = "/embeddings"
_FLOAT32_SIZE: Final = 4
# The wire format is little-endian float32; array("f") reads native order.
_NATIVE_BIG_ENDIAN = sys.byteorder == "big"


class HolySheepEmbeddings(GatewaySettings, Embeddings):
    r"""Text embeddings from the HolySheep AI gateway (OpenAI-compatible).

    Setup:
        Install ``langchain-holysheep`` and set ``HOLYSHEEP_API_KEY`` (the same
        key as the chat model).

        .. code-block:: bash

            pip install -U langchain-holysheep
            export HOLYSHEEP_API_KEY="cr_..."

    Key init args — embedding params:
        model: str
            Embedding model id (default ``"text-embedding-3-small"``). It must be
            one the gateway serves: check ``GET /v1/models`` for your key.
        dimensions: int | None
            Ask for shorter vectors (models that support it, e.g.
            ``text-embedding-3-*``). Unset: the model's native size.

    Key init args — client params:
        api_key: SecretStr | None
            Defaults to ``HOLYSHEEP_API_KEY``.
        base_url: str
            Defaults to ``HOLYSHEEP_BASE_URL``, else ``https://api.holysheep.ai/v1``.
        chunk_size: int
            Inputs per request (default 256, at most 2048).
        max_concurrency: int
            Requests in flight at once in ``aembed_documents`` (default 4).
        timeout: float
            Read/write timeout per request in seconds (default 60).
        max_retries: int
            SDK retries for 408/409/429/5xx and connection errors (default 2).

    Instantiate:
        .. code-block:: python

            from langchain_holysheep.embeddings import HolySheepEmbeddings

            embeddings = HolySheepEmbeddings(model="text-embedding-3-small")

    Embed:
        .. code-block:: python

            vector = embeddings.embed_query("What is a sheep?")
            vectors = embeddings.embed_documents(["Sheep eat grass.", "Wool!"])

            # async: batches run concurrently, max_concurrency at a time
            vectors = await embeddings.aembed_documents(many_texts)

    Behaviour:
        * Order is preserved, whatever the batching.
        * ``embed_documents([])`` returns ``[]`` without a request.
        * Empty strings are sent as they are: the gateway decides (the offline
          gateway embeds ``""`` as ``[1.0, 0.0, ...]``; OpenAI-backed routes
          may answer 400, raised as ``HolySheepBadRequestError``).
        * An input longer than the model's context raises
          ``HolySheepContextOverflowError``; nothing is truncated silently.
        * Every failure is a ``langchain_holysheep.errors.HolySheepError``.

    All other methods are private or match ``Embeddings``.
    """

    model_config = ConfigDict(
        populate_by_name=True,
        arbitrary_types_allowed=True,
        extra="forbid",
        protected_namespaces=(),
    )

    # ------------------------------------------------------------------ fields
    model_name: str = Field(default=DEFAULT_EMBEDDING_MODEL, alias="model")
    """Embedding model id, as the gateway names it; it must be one it serves."""
    dimensions: int | None = Field(default=None, gt=0)
    """Length of the returned vectors, for models that can shorten them."""
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, gt=0, le=MAX_CHUNK_SIZE)
    """Inputs sent per request (at most 2048, the API's limit).

    256 keeps a request of typical RAG chunks (up to ~1,000 tokens each) under
    the 300k-tokens-per-request cap of OpenAI-backed routes, while still cutting
    round trips by two orders of magnitude.
    """
    max_concurrency: int = Field(default=4, gt=0)
    """Batches in flight at once in ``aembed_documents``."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds to wait for each batch's response."""

    # -------------------------------------------------- Embeddings overrides
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts, ``chunk_size`` per request, one request after another.

        Args:
            texts: The texts to embed (``[]`` sends no request).

        Returns:
            One vector per text, in the order of ``texts``.
        """
        if not (batches := _batches(texts, self.chunk_size)):
            return []
        client = get_sync_client(self._client_config(self.http_client))
        vectors: list[list[float]] = []
        for batch in batches:
            vectors += post_json(client, *self._request(batch))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed one text.

        Args:
            text: The text to embed.

        Returns:
            Its vector.
        """
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`, with ``max_concurrency`` batches at once.

        The vectors come back in the order of ``texts``. If one batch fails, the
        others still in flight are cancelled and that batch's error is raised.
        """
        if not (batches := _batches(texts, self.chunk_size)):
            return []
        client = await get_async_client(self._client_config(self.http_async_client))
        limit = asyncio.Semaphore(self.max_concurrency)

        async def embed(batch: list[str]) -> list[list[float]]:
            async with limit:
                return await apost_json(client, *self._request(batch))

        if len(batches) == 1:  # the common query case: no task needed
            return await embed(batches[0])
        tasks = [asyncio.ensure_future(embed(batch)) for batch in batches]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [vector for result in results for vector in result]

    async def aembed_query(self, text: str) -> list[float]:
        """Embed one text.

        Args:
            text: The text to embed.

        Returns:
            Its vector.
        """
        return (await self.aembed_documents([text]))[0]

    # ------------------------------------------------------ resource control
    def _request(self, batch: list[str]) -> _BatchRequest:
        """What ``post_json`` sends for one batch, and how it reads the answer.

        Vectors travel as base64 float32 and are read back in input order,
        checked for gaps and for the requested ``dimensions``.
        """
        body: dict[str, Any] = {
            "model": self.model_name,
            "input": batch,
            "encoding_format": "base64",
        }
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        parse = partial(
            _parse_response, expected=len(batch), dimensions=self.dimensions
        )
        return _EMBEDDINGS_PATH, body, self._request_options(), parse


# ---------------------------------------------------------------- pure helpers
def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    """Split ``texts`` into lists of at most ``size``, checking each is a string."""
    if isinstance(texts, str):
        from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415

        msg = (
            "embed_documents() takes a list of texts, got one string. Wrap it in "
            "a list, or call embed_query() for a single text."
        )
        raise HolySheepInputError(msg)
    items = list(texts)
    for index, text in enumerate(items):
        if not isinstance(text, str):
            from langchain_holysheep.errors import (  # noqa: PLC0415
                HolySheepInputError,
            )

            msg = (
                f"Text {index} is a {type(text).__name__}, not a str; convert "
                "every input to a string before embedding it."
            )
            raise HolySheepInputError(msg)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _response_error(message: str, body: object) -> Exception:
    from langchain_holysheep.errors import HolySheepResponseError  # noqa: PLC0415

    return HolySheepResponseError(message, body=body)


def _decode_vector(raw: object, body: object) -> list[float]:
    """One embedding from its wire form: base64 float32 (little-endian) or a list."""
    if isinstance(raw, str):
        try:
            packed = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as error:
            msg = "The gateway sent an embedding that is not valid base64."
            raise _response_error(msg, body) from error
        if len(packed) % _FLOAT32_SIZE:
            msg = (
                f"The gateway sent a base64 embedding of {len(packed)} bytes, "
                "which is not a whole number of float32 values."
            )
            raise _response_error(msg, body)
        vector = array.array("f")
        vector.frombytes(packed)
        if _NATIVE_BIG_ENDIAN:
            vector.byteswap()
        return vector.tolist()
    # Some OpenAI-compatible routes ignore encoding_format and send floats.
    if isinstance(raw, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in raw
    ):
        return [float(x) for x in raw]
    msg = "The gateway sent an embedding that is neither base64 nor a list of numbers."
    raise _response_error(msg, body)


def _parse_response(
    data: object, expected: int, dimensions: int | None
) -> list[list[float]]:
    """Vectors in input order from an embeddings response, checked for gaps."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        msg = "The gateway's embeddings response has no 'data' list."
        raise _response_error(msg, data)
    by_index: dict[int, list[float]] = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            msg = f"Item {position} of the embeddings response is not an object."
            raise _response_error(msg, data)
        index = item.get("index", position)
        if not isinstance(index, int) or not 0 <= index < expected or index in by_index:
            msg = (
                f"The embeddings response has a missing, duplicate or out-of-range "
                f"index {index!r} (expected 0..{expected - 1})."
            )
            raise _response_error(msg, data)
        by_index[index] = _decode_vector(item.get("embedding"), data)
    if len(by_index) != expected:
        msg = (
            f"The gateway returned {len(by_index)} embeddings for {expected} inputs; "
            "nothing was returned for the rest."
        )
        raise _response_error(msg, data)
    vectors = [by_index[i] for i in range(expected)]
    if dimensions is not None and any(len(v) != dimensions for v in vectors):
        sizes = sorted({len(v) for v in vectors})
        msg = (
            f"dimensions={dimensions} was requested but the gateway returned vectors "
            f"of length {sizes}: this model does not support shortening vectors. "
            "Unset dimensions or choose a model that supports it."
        )
        raise _response_error(msg, data)
    return vectors
