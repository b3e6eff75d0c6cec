"""``ChatHolySheep``: the HolySheep gateway as a LangChain chat model."""

from __future__ import annotations

import ipaddress
import warnings
from contextlib import closing
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from langchain_holysheep._client import (
    ClientConfig,
    aclose_async_clients,
    close_sync_client,
    get_async_client,
    get_sync_client,
)
from langchain_holysheep._convert import (
    PROVIDER,
    StreamState,
    completion_to_result,
    messages_to_dicts,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    import openai
    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models import LangSmithParams
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import ChatGenerationChunk, ChatResult
    from langchain_core.tools import BaseTool

    from langchain_holysheep.errors import HolySheepError

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "ChatHolySheep"]

DEFAULT_BASE_URL: Final = "https://api.holysheep.ai/v1"
DEFAULT_MODEL: Final = "mistral-small-2603"
_CHAT_PATH: Final = "/chat/completions"
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})

# Sampling parameters sent as-is when set. Unset (None) parameters are never sent.
_API_PARAMS: Final = (
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "seed",
    "n",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
)
# Gateways that reject ``stream_options`` (some Mistral and Azure-backed routes)
# are remembered per (base_url, model) for the life of the process.
_STREAM_OPTIONS_REJECTED: set[tuple[str, str]] = set()


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _rejects_stream_options(error: HolySheepError, body: dict[str, Any]) -> bool:
    """Whether a 400/422 is the gateway refusing ``stream_options``."""
    from langchain_holysheep.errors import (  # noqa: PLC0415
        HolySheepBadRequestError,
        HolySheepUnprocessableEntityError,
    )

    if "stream_options" not in body or not isinstance(
        error, (HolySheepBadRequestError, HolySheepUnprocessableEntityError)
    ):
        return False
    return error.param == "stream_options" or "stream_options" in error.message


class ChatHolySheep(BaseChatModel):
    r"""Chat model for the HolySheep AI gateway (OpenAI-compatible).

    One key serves Mistral Small 2603, GPT-4.1, Claude Sonnet 4.5, Gemini 2.5
    Flash, DeepSeek V3.2 and more. Built directly on the official ``openai``
    client, so its authentication, retries and connection pooling apply, while
    the hot path skips the SDK's typed response models.

    Setup:
        Install ``langchain-holysheep`` and set ``HOLYSHEEP_API_KEY``.

        .. code-block:: bash

            pip install -U langchain-holysheep
            export HOLYSHEEP_API_KEY="cr_..."

        With no key at hand, ``langchain_holysheep.testing.OfflineGateway`` serves
        the same API on 127.0.0.1 (see ``docs/testing.md``).

    Key init args — completion params:
        model: str
            Model id, e.g. ``"mistral-small-2603"`` (default), ``"gpt-4.1"``,
            ``"claude-sonnet-4.5"``, ``"gemini-2.5-flash"``, ``"deepseek-v3.2"``.
        temperature: float | None
            Sampling temperature in [0, 2].
        max_tokens: int | None
            Maximum number of tokens to generate.
        reasoning_effort: str | None
            For reasoning models: ``"low"``, ``"medium"`` or ``"high"``.
        stream_usage: bool
            Ask for token usage when streaming (default True).

    Key init args — client params:
        api_key: SecretStr | None
            Defaults to ``HOLYSHEEP_API_KEY``.
        base_url: str
            Defaults to ``HOLYSHEEP_BASE_URL``, else ``https://api.holysheep.ai/v1``.
        timeout: float
            Read/write timeout in seconds (default 120; never unlimited).
        connect_timeout: float
            Connect timeout in seconds (default 10).
        max_retries: int
            SDK retries for 408/409/429/5xx and connection errors (default 2).

    Instantiate:
        .. code-block:: python

            from langchain_holysheep import ChatHolySheep

            llm = ChatHolySheep(model="mistral-small-2603", temperature=0.2)

    Invoke:
        .. code-block:: python

            messages = [
                ("system", "Translate the user sentence to French."),
                ("human", "I love programming."),
            ]
            ai_msg = llm.invoke(messages)
            print(ai_msg.content)

    Stream:
        .. code-block:: python

            for chunk in llm.stream(messages):
                print(chunk.text, end="", flush=True)

            # Token usage arrives on the last chunk:
            full = None
            for chunk in llm.stream(messages):
                full = chunk if full is None else full + chunk
            print(full.usage_metadata)

    Async:
        .. code-block:: python

            await llm.ainvoke(messages)
            async for chunk in llm.astream(messages):
                print(chunk.text, end="")
            await llm.abatch([messages] * 10, config={"max_concurrency": 5})

    Tool calling:
        .. code-block:: python

            from pydantic import BaseModel, Field


            class GetWeather(BaseModel):
                '''Get the current weather in a given city.'''

                city: str = Field(description="The city, e.g. Paris")


            llm_with_tools = llm.bind_tools([GetWeather])
            ai_msg = llm_with_tools.invoke("What is the weather in Paris?")
            print(ai_msg.tool_calls)

    Structured output:
        .. code-block:: python

            class Joke(BaseModel):
                '''A joke.'''

                setup: str
                punchline: str


            structured = llm.with_structured_output(Joke)
            structured.invoke("Tell me a joke about cats")

    Image input:
        .. code-block:: python

            message = {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this image."},
                    {"type": "image", "url": "https://example.com/cat.png"},
                ],
            }
            llm.invoke([message])

    Reasoning:
        .. code-block:: python

            llm = ChatHolySheep(model="deepseek-v3.2", reasoning_effort="high")
            ai_msg = llm.invoke("What is 17 * 23?")
            ai_msg.additional_kwargs["reasoning_content"]

            # or as standard content blocks:
            llm = ChatHolySheep(model="deepseek-v3.2", output_version="v1")
            [b for b in llm.invoke("17 * 23?").content if b["type"] == "reasoning"]

    Token usage:
        .. code-block:: python

            ai_msg = llm.invoke(messages)
            ai_msg.usage_metadata
            # {'input_tokens': 28, 'output_tokens': 5, 'total_tokens': 33,
            #  'input_token_details': {'cache_read': 0},
            #  'output_token_details': {'reasoning': 0}}

    Response metadata:
        .. code-block:: python

            ai_msg.response_metadata
            # {'model_provider': 'holysheep', 'model_name': 'mistral-small-2603',
            #  'id': 'chatcmpl-...', 'finish_reason': 'stop',
            #  'system_fingerprint': '...', 'token_usage': {...}}

    Errors:
        Every failure is a ``langchain_holysheep.errors.HolySheepError`` (a
        langchain-core ``ModelError``) and, where the SDK could raise it, the
        matching ``openai`` error too. See ``docs/chat.md`` for the table.

    All other methods are private or match ``BaseChatModel``.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    # ------------------------------------------------------------------ fields
    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    """Model id as the gateway names it (case-sensitive)."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("HOLYSHEEP_API_KEY", default=None)
    )
    """HolySheep API key; defaults to ``HOLYSHEEP_API_KEY``. Never logged."""
    base_url: str = Field(
        default_factory=from_env("HOLYSHEEP_BASE_URL", default=DEFAULT_BASE_URL)
    )
    """Gateway URL; defaults to ``HOLYSHEEP_BASE_URL``, else the public gateway."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for a response or for the next stream chunk."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for a connection to the gateway."""
    max_retries: int = Field(default=2, ge=0)
    """SDK retries on 408/409/429/5xx and connection errors (honours Retry-After)."""
    default_headers: dict[str, str] | None = None
    """Headers sent with every request."""
    default_query: dict[str, Any] | None = None
    """Query parameters sent with every request."""
    http_client: Any | None = Field(default=None, exclude=True)
    """An ``httpx``/``httpx2`` ``Client`` for sync calls (proxies, limits, ...)."""
    http_async_client: Any | None = Field(default=None, exclude=True)
    """An ``httpx``/``httpx2`` ``AsyncClient`` for async calls."""
    streaming: bool = False
    """Stream internally even for ``invoke`` (for callbacks' token events)."""
    stream_usage: bool = True
    """Ask for token usage on streams (``stream_options.include_usage``)."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    """Sampling temperature in [0, 2]."""
    max_tokens: int | None = Field(default=None, gt=0)
    """Maximum number of tokens to generate."""
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    """Nucleus sampling probability mass."""
    stop: list[str] | str | None = Field(default=None, alias="stop_sequences")
    """Stop sequences."""
    seed: int | None = None
    """Seed for best-effort deterministic sampling."""
    n: int | None = Field(default=None, ge=1)
    """Number of choices to generate (not with streaming)."""
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    """Penalty for frequent tokens, in [-2, 2]."""
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    """Penalty for tokens already present, in [-2, 2]."""
    logprobs: bool | None = None
    """Return log probabilities of the output tokens."""
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    """Number of most likely alternatives per token, with ``logprobs``."""
    reasoning_effort: str | None = None
    """Reasoning effort for reasoning models (``"low"``, ``"medium"``, ``"high"``)."""
    extra_body: dict[str, Any] | None = None
    """Extra JSON fields for every request; merged with a per-call ``extra_body``."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other request parameters. Unknown constructor arguments land here."""
    validate_model: bool = False
    """Check the model id against the gateway's catalog (``GET /v1/models``,
    cached) on first use, and raise ``HolySheepModelNotFoundError`` with close
    suggestions before sending a chat request for an unknown id."""

    _validated_models: set[str] = PrivateAttr(default_factory=set)

    # ----------------------------------------------------------- validation
    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: Any) -> Any:
        """Move unknown constructor arguments into ``model_kwargs``, with a warning.

        ``api_key=None`` means "read ``HOLYSHEEP_API_KEY``", which is also what a
        model loaded with ``langchain_core.load.load`` gets (its secret is never
        serialized).
        """
        if not isinstance(values, dict):
            return values
        if "api_key" in values and values["api_key"] is None:
            values = {k: v for k, v in values.items() if k != "api_key"}
        known = set(cls.model_fields)
        known |= {f.alias for f in cls.model_fields.values() if f.alias}
        unknown = [k for k in values if k not in known]
        if not unknown:
            return values
        values = dict(values)
        extra = dict(values.get("model_kwargs") or {})
        for key in unknown:
            warnings.warn(
                f"{key!r} is not a ChatHolySheep parameter; it will be sent to the "
                f"gateway as-is via model_kwargs. Pass model_kwargs={{{key!r}: ...}} "
                "(or extra_body) explicitly to silence this warning.",
                UserWarning,
                stacklevel=2,
            )
            extra[key] = values.pop(key)
        values["model_kwargs"] = extra
        return values

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            msg = (
                f"base_url must be an http(s) URL with a host, got {value!r}. "
                f"Use the gateway's OpenAI-compatible endpoint, {DEFAULT_BASE_URL}."
            )
            raise ValueError(msg)
        if parts.hostname == "api.holysheep.ai" and not parts.path.rstrip("/"):
            msg = (
                f"base_url {value!r} is HolySheep's Anthropic-native endpoint; "
                f"the chat model needs the OpenAI-compatible one, {DEFAULT_BASE_URL}."
            )
            raise ValueError(msg)
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            warnings.warn(
                f"base_url {value!r} is plain http to a non-loopback host: the API "
                "key and prompts travel unencrypted. Use https.",
                UserWarning,
                stacklevel=2,
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_streaming_choices(self) -> ChatHolySheep:
        if self.streaming and (self.n or 1) > 1:
            msg = "n > 1 cannot be combined with streaming=True; set one or the other."
            raise ValueError(msg)
        return self

    # ------------------------------------------------- serialization overrides
    @property
    def lc_secrets(self) -> dict[str, str]:
        """Where ``dumpd`` finds the key: an environment variable, never a value."""
        return {"api_key": "HOLYSHEEP_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """ChatHolySheep can be serialized with ``dumpd``/``dumps``."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Return ``["langchain_holysheep", "chat_models"]``."""
        return ["langchain_holysheep", "chat_models"]

    # ------------------------------------------------ BaseChatModel overrides
    @property
    def _llm_type(self) -> str:
        return "holysheep-chat"

    @property
    def _default_params(self) -> dict[str, Any]:
        """The request parameters this instance sends (unset ones omitted)."""
        params: dict[str, Any] = {"model": self.model_name}
        for name in _API_PARAMS:
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        params.update(self.model_kwargs)
        return params

    @property
    def _identifying_params(self) -> dict[str, Any]:
        """Everything that changes the output (used as the cache key)."""
        return {
            **self._default_params,
            "base_url": self.base_url,
            "extra_body": self.extra_body,
            "stream_usage": self.stream_usage,
        }

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = PROVIDER
        params["ls_model_name"] = kwargs.get("model") or self.model_name
        if params.get("ls_stop") is None and isinstance(self.stop, list):
            params["ls_stop"] = self.stop
        return params

    def _combine_llm_outputs(
        self, llm_outputs: list[dict[str, Any] | None]
    ) -> dict[str, Any]:
        token_usage: dict[str, int] = {}
        for output in llm_outputs:
            for key, value in ((output or {}).get("token_usage") or {}).items():
                if isinstance(value, int):
                    token_usage[key] = token_usage.get(key, 0) + value
        return {"token_usage": token_usage, "model_name": self.model_name}

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool]
        | None = None,
    ) -> int:
        """Estimate the prompt's tokens offline (no tokenizer download).

        Uses langchain-core's ``count_tokens_approximately``: good enough for
        ``trim_messages`` and context budgeting on every model behind the gateway.

        Args:
            messages: The conversation.
            tools: Tools bound to the call (counted by their JSON size).

        Returns:
            The approximate number of input tokens.
        """
        from langchain_core.utils.function_calling import (  # noqa: PLC0415
            convert_to_openai_tool,
        )

        schemas: list[BaseTool | dict[str, Any]] | None = (
            [convert_to_openai_tool(t) for t in tools] if tools else None
        )
        return count_tokens_approximately(messages, tools=schemas)

    def get_num_tokens(self, text: str) -> int:
        """Estimate the tokens in ``text`` offline (about four characters a token).

        Args:
            text: Any text.

        Returns:
            The approximate number of tokens.
        """
        from langchain_core.messages import HumanMessage  # noqa: PLC0415

        return count_tokens_approximately(
            [HumanMessage(text)], extra_tokens_per_message=0
        )

    # ----------------------------------------------------------- the calls
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002 (no tokens)
        **kwargs: Any,
    ) -> ChatResult:
        body = self._request_body(messages, stop, kwargs, stream=False)
        config = self._client_config(self.http_client)
        client = get_sync_client(config)
        with self._translate_errors():
            data = client.post(
                _CHAT_PATH, body=body, cast_to=object, options=self._request_options()
            )
        return completion_to_result(data)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        body = self._request_body(messages, stop, kwargs, stream=False)
        client = await get_async_client(self._client_config(self.http_async_client))
        with self._translate_errors():
            data = await client.post(
                _CHAT_PATH, body=body, cast_to=object, options=self._request_options()
            )
        return completion_to_result(data)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        body = self._request_body(messages, stop, kwargs, stream=True)
        client = get_sync_client(self._client_config(self.http_client))
        try:
            stream = self._open_stream(client, body)
        except Exception as error:
            if not self._retry_without_stream_options(error, body):
                raise
            stream = self._open_stream(client, body)
        state = StreamState()
        with closing(stream), self._translate_errors(state):
            for data in stream:
                if (chunk := state.feed(data)) is not None:
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            yield self._finish_stream(state, stream.response.request)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        body = self._request_body(messages, stop, kwargs, stream=True)
        client = await get_async_client(self._client_config(self.http_async_client))
        try:
            stream = await self._aopen_stream(client, body)
        except Exception as error:
            if not self._retry_without_stream_options(error, body):
                raise
            stream = await self._aopen_stream(client, body)
        state = StreamState()
        try:
            with self._translate_errors(state):
                async for data in stream:
                    if (chunk := state.feed(data)) is not None:
                        if run_manager:
                            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
                yield self._finish_stream(state, stream.response.request)
        finally:
            await stream.close()

    # ------------------------------------------------------ resource control
    def close(self) -> None:
        """Close the shared sync connection pool this model uses.

        Pools are shared by every model with the same gateway, key and headers;
        a closed pool is rebuilt on the next call. Usually unnecessary: pools
        live for the process.
        """
        if self.api_key is not None:
            close_sync_client(self._client_config(self.http_client))

    async def aclose(self) -> None:
        """Close this event loop's async connection pool for this model.

        Pools on a loop are closed anyway when the loop shuts down
        (``asyncio.run`` returning).
        """
        if self.api_key is not None:
            await aclose_async_clients(self._client_config(self.http_async_client))

    # ------------------------------------------------------------ internals
    def _client_config(self, http_client: Any) -> ClientConfig:
        if self.api_key is None:
            from langchain_holysheep.errors import (  # noqa: PLC0415
                HolySheepMissingAPIKeyError,
            )

            raise HolySheepMissingAPIKeyError
        return ClientConfig.create(
            base_url=self.base_url,
            api_key=self.api_key.get_secret_value(),
            default_headers=self.default_headers,
            default_query=self.default_query,
            http_client=http_client,
        )

    def _request_options(self) -> openai.RequestOptions:
        import openai  # noqa: PLC0415  (already loaded by the client)

        return {
            "timeout": openai.Timeout(self.timeout, connect=self.connect_timeout),
            "max_retries": self.max_retries,
        }

    def _request_body(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        """Build the JSON body: instance params, then per-call ones, then extra_body."""
        extra_body = {
            **(self.extra_body or {}),
            **(kwargs.pop("extra_body", None) or {}),
        }
        stream_usage = kwargs.pop("stream_usage", self.stream_usage)
        kwargs.pop("stream", None)
        body = {**self._default_params, **kwargs}
        if stop is not None:
            body["stop"] = stop
        if stream:
            if (body.get("n") or 1) > 1:
                from langchain_holysheep.errors import (  # noqa: PLC0415
                    HolySheepInputError,
                )

                msg = "n > 1 cannot be streamed; call invoke() for several choices."
                raise HolySheepInputError(msg)
            body["stream"] = True
            if stream_usage and (self.base_url, body["model"]) not in (
                _STREAM_OPTIONS_REJECTED
            ):
                body["stream_options"] = {"include_usage": True}
        body["messages"] = messages_to_dicts(messages)
        body.update(extra_body)
        return body

    def _translate_errors(self, state: StreamState | None = None) -> Any:
        from langchain_holysheep.errors import translate_errors  # noqa: PLC0415

        secret = self.api_key.get_secret_value() if self.api_key else None
        return translate_errors(secret, partial=(lambda: state.text) if state else None)

    def _open_stream(self, client: openai.OpenAI, body: dict[str, Any]) -> Any:
        import openai  # noqa: PLC0415

        with self._translate_errors():
            return client.post(
                _CHAT_PATH,
                body=body,
                cast_to=object,
                options=self._request_options(),
                stream=True,
                stream_cls=openai.Stream[object],
            )

    async def _aopen_stream(
        self, client: openai.AsyncOpenAI, body: dict[str, Any]
    ) -> Any:
        import openai  # noqa: PLC0415

        with self._translate_errors():
            return await client.post(
                _CHAT_PATH,
                body=body,
                cast_to=object,
                options=self._request_options(),
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )

    def _retry_without_stream_options(
        self, error: Exception, body: dict[str, Any]
    ) -> bool:
        """If ``error`` rejects ``stream_options``, drop it, remember, and say retry."""
        from langchain_holysheep.errors import HolySheepError  # noqa: PLC0415

        if not isinstance(error, HolySheepError) or not _rejects_stream_options(
            error, body
        ):
            return False
        del body["stream_options"]
        _STREAM_OPTIONS_REJECTED.add((self.base_url, body["model"]))
        return True

    def _finish_stream(self, state: StreamState, request: Any) -> ChatGenerationChunk:
        if not state.complete:
            from langchain_holysheep.errors import (  # noqa: PLC0415
                HolySheepTruncatedStreamError,
            )

            msg = (
                "The stream ended before the model finished (no finish_reason): "
                f"{len(state.text)} characters were received and are kept in "
                "error.partial_text. Retry the request."
            )
            raise HolySheepTruncatedStreamError(msg, request, body=None)
        return state.finish()
