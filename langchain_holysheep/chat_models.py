"""``ChatHolySheep``: the HolySheep gateway as a LangChain chat model."""

from __future__ import annotations

import inspect
import logging
import warnings
from contextlib import closing
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from langchain_holysheep._client import (
    ClientConfig,
    get_async_client,
    get_sync_client,
)
from langchain_holysheep._convert import (
    PROVIDER,
    StreamState,
    build_request,
    completion_to_result,
    estimate_message_tokens,
    estimate_text_tokens,
    no_token_ids,
)
from langchain_holysheep._deadline import Deadline
from langchain_holysheep._http import (
    aopen_sse,
    apost_json,
    astream_events,
    open_sse,
    post_json,
    stream_events,
)
from langchain_holysheep._profiles import get_capabilities
from langchain_holysheep._secrets import mask_url
from langchain_holysheep._settings import (
    DEFAULT_BASE_URL,
    GatewaySettings,
    HolySheepSerializable,
    per_call_seconds,
)
from langchain_holysheep.ratelimit.limiter import (
    HolySheepRateLimiter,
    afirst_step_reserved,
    first_step_reserved,
    reserved_by_model,
    watching,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    import openai
    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models import LangSmithParams
    from langchain_core.language_models.base import LanguageModelInput
    from langchain_core.language_models.model_profile import ModelProfile
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.runnables import Runnable, RunnableConfig
    from langchain_core.tools import BaseTool
    from pydantic import BaseModel

    from langchain_holysheep._convert import OnDrop
    from langchain_holysheep.errors import HolySheepError
    from langchain_holysheep.fallback import ChatHolySheepFallback

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "ChatHolySheep"]

DEFAULT_MODEL: Final = "mistral-small-2603"
_CHAT_PATH: Final = "/chat/completions"

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
# are remembered for the life of the process: base_url -> the models it refused.
_STREAM_OPTIONS_REJECTED: dict[str, set[str]] = {}
_logger = logging.getLogger(__name__)
_F = TypeVar("_F", bound="Callable[..., Any]")


def _call_cost(
    served: str, requested: str, usage: Any, metadata: dict[str, Any]
) -> tuple[float | None, str | None]:
    """``(cost_usd, cost_source)`` of one call, by ``pricing.resolve_call_cost``.

    ``resolve_call_usd`` is that rule with only the total worked out.
    """
    from langchain_holysheep.pricing import resolve_call_usd  # noqa: PLC0415

    try:
        cost = resolve_call_usd(served, usage, metadata, requested_model=requested)
    except ValueError as error:  # a broken HOLYSHEEP_PRICES_FILE, odd usage
        _logger.warning("No cost for this %s call: %s", served, error)
        return None, None
    return (None, None) if cost is None else cost


def _settle(
    limiter: HolySheepRateLimiter | None,
    body: dict[str, Any],
    reserved: int,
    generations: Sequence[ChatGeneration],
) -> None:
    """Tell the limiter what a call really used (``reserve_output="learned"``)."""
    if limiter is not None and reserved and generations:
        usage = getattr(generations[0].message, "usage_metadata", None)
        limiter.settle_chat(body, reserved, usage)


def _add_call_metadata(
    generations: Sequence[ChatGeneration],
    requested_model: str,
    start: float,
    first: float | None,
    end: float,
) -> None:
    """Put ``latency``, ``cost_usd`` and ``cost_source`` on a call's messages.

    ``first`` is when the first token arrived (streams only); tokens per second
    are counted from it (else from ``start``) to ``end``. The cost follows
    :func:`langchain_holysheep.pricing.resolve_call_cost`: the gateway's own
    cost, else the price of the model that served the call, or of the requested
    id when the served one (often a dated variant) has no price.
    """
    if not generations:
        return
    message = generations[0].message
    usage = getattr(message, "usage_metadata", None)
    output_tokens = usage.get("output_tokens") if usage else None
    generating = end - (start if first is None else first)
    served = message.response_metadata.get("model_name") or requested_model
    cost_usd, cost_source = _call_cost(
        served, requested_model, usage, message.response_metadata
    )
    latency = {
        "ttft_ms": None if first is None else round((first - start) * 1000.0, 3),
        "total_ms": round((end - start) * 1000.0, 3),
        "output_tokens_per_s": (
            round(output_tokens / generating, 3)
            if isinstance(output_tokens, int) and generating > 0
            else None
        ),
    }
    for generation in generations:
        metadata = generation.message.response_metadata
        metadata["latency"] = dict(latency)
        metadata["cost_usd"] = cost_usd
        metadata["cost_source"] = cost_source


def _signature_computed_once(method: _F) -> _F:
    """Store ``method``'s signature on it, so ``inspect.signature`` is a lookup.

    langchain-core calls ``inspect.signature(self._generate)`` (and
    ``_agenerate``) on every call, to see whether it takes ``run_manager``: about
    25 µs of parsing per call. The stored signature is the same object it would
    compute.
    """
    setattr(method, "__signature__", inspect.signature(method))  # noqa: B010 (mypy)
    return method


def _timed_result(
    data: object, model: str, *, allow_empty: bool = False
) -> tuple[float, ChatResult]:
    """When the response arrived, then its parsed result (``model``: the id asked).

    ``post_json`` calls it inside the error translation, so a response error
    is masked like any other.
    """
    return perf_counter(), completion_to_result(data, model, allow_empty=allow_empty)


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


class ChatHolySheep(HolySheepSerializable, BaseChatModel, GatewaySettings):
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
            Seconds to wait for the response, or for each next stream chunk
            (default 120; never unlimited). Per call too: ``invoke(x, timeout=5)``.
        total_timeout: float | None
            Seconds the whole call may take, stream included (default unset).
            Per call too: ``invoke(x, total_timeout=30)``.
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
        Nothing passes silently: an answer with no text, no tool call and no
        refusal raises the retryable ``HolySheepEmptyAnswerError`` (unless
        ``allow_empty_answer=True``), an error object sent with a 200 raises
        the error its code stands for, and a refusal is a standard ``refusal``
        block in ``message.content_blocks``.

    All other methods are private or match ``BaseChatModel``.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    # ------------------------------------------------------------------ fields
    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    """Model id as the gateway names it (case-sensitive)."""
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
    total_timeout: float | None = Field(default=None, gt=0)
    """Seconds the whole call may take, from the request to the last stream
    chunk, retries included; past it the call raises
    ``HolySheepTotalTimeoutError`` (a stream's text so far in ``partial_text``).
    Unset by default: ``timeout`` (per wait) still bounds every wait. A
    per-call ``total_timeout=`` overrides it."""
    validate_model: bool = False
    """Check the model id against the gateway's catalog (``GET /v1/models``,
    cached) on first use, and raise ``HolySheepModelNotFoundError`` with close
    suggestions before sending a chat request for an unknown id."""
    allow_empty_answer: bool = False
    """Return an answer with no text, no tool call and no refusal (``''``)
    instead of raising ``HolySheepEmptyAnswerError`` (retryable, so a fallback
    chain asks the next model), streamed or not."""

    _validated_models: set[str] = PrivateAttr(default_factory=set)
    _on_drop: OnDrop | None = PrivateAttr(default=None)
    """Set on a fallback chain's copy of a member: settings the model cannot
    take but can do without are dropped and reported here, not refused."""

    # ----------------------------------------------------------- validation
    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: Any) -> Any:
        """Move unknown constructor arguments into ``model_kwargs``, with a warning."""
        if not isinstance(values, dict):
            return values
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

    @model_validator(mode="after")
    def _check_streaming_choices(self) -> ChatHolySheep:
        if self.streaming and (self.n or 1) > 1:
            msg = "n > 1 cannot be combined with streaming=True; set one or the other."
            raise ValueError(msg)
        return self

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
        """Everything that changes the output (used as the cache key).

        Callbacks and traces receive these as invocation params, so the URL's
        credentials are masked.
        """
        params = {
            **self._default_params,
            "base_url": mask_url(self.base_url),
            "extra_body": self.extra_body,
            "stream_usage": self.stream_usage,
        }
        if self.allow_empty_answer:  # a cached '' must not reach a strict model
            params["allow_empty_answer"] = True
        return params

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        """The LLM-cache key, without a call's time bounds (they change no answer).

        A fallback chain with a ``total_timeout`` passes each member the time
        left, which differs on every call: with it in the key, a member's cache
        would never hit.
        """
        kwargs.pop("timeout", None)
        kwargs.pop("total_timeout", None)
        return super()._get_llm_string(stop=stop, **kwargs)

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        """The tracing params: core's fields, read from ours.

        The same dict (keys in the same order) as ``BaseChatModel._get_ls_params``
        with our provider, model name and stop, without its ``hasattr`` probes
        for attributes this class does not have (a pydantic ``AttributeError``
        built on every call).
        """
        params: LangSmithParams = {"ls_provider": PROVIDER, "ls_model_type": "chat"}
        if stop:
            params["ls_stop"] = stop
        params["ls_model_name"] = kwargs.get("model") or self.model_name
        temperature = kwargs.get("temperature")
        if not ("temperature" in kwargs and isinstance(temperature, (int, float))):
            temperature = self.temperature
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens")
        if not ("max_tokens" in kwargs and isinstance(max_tokens, int)):
            max_tokens = self.max_tokens
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if params.get("ls_stop") is None and isinstance(self.stop, list):
            params["ls_stop"] = self.stop
        return params

    def _dict_for_compat(self) -> dict[str, Any]:
        """``asdict()``, unless a subclass still overrides the deprecated ``dict``.

        langchain-core calls ``dict()`` on every call inside a warnings filter
        (for such overrides); without one, ``dict()`` is ``asdict()``.
        """
        if type(self).dict is BaseChatModel.dict:
            return self.asdict()
        return super()._dict_for_compat()

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
        """Estimate the prompt's tokens offline (no tokenizer, no download).

        Uses langchain-core's ``count_tokens_approximately``: good enough for
        ``trim_messages`` and context budgeting on every model behind the gateway.

        Args:
            messages: The conversation.
            tools: Tools bound to the call (counted by their JSON size).

        Returns:
            The approximate number of input tokens.
        """
        return estimate_message_tokens(messages, tools)

    def get_num_tokens(self, text: str) -> int:
        """Estimate the tokens in ``text`` offline (about four characters a token).

        With ``custom_get_token_ids`` set, the number of ids it returns.

        Args:
            text: Any text.

        Returns:
            The approximate number of tokens.
        """
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return estimate_text_tokens(text)

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids from ``custom_get_token_ids``; there is no offline tokenizer.

        Args:
            text: Any text.

        Returns:
            What ``custom_get_token_ids`` returns.

        Raises:
            NotImplementedError: At once, without ``custom_get_token_ids``
                (nothing is downloaded); it says what to use instead.
        """
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise no_token_ids(type(self).__name__)

    # ---- tools and structured output
    # The rules live in ``_tools`` (tools, tool_choice, response_format, the
    # strict policy) and ``_structured`` (the method per model, the runnable and
    # its checks), checked against ``_profiles``: known models get clear errors,
    # before any request, for what they cannot do; unknown models get the
    # request as asked.

    def _resolve_model_profile(self) -> ModelProfile | None:
        """The profile of a model the gateway serves (``None`` if unknown)."""
        from langchain_holysheep._profiles import model_profile  # noqa: PLC0415

        return model_profile(self.model_name)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: dict[str, Any] | type | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (and optionally a tool choice) to the model.

        Args:
            tools: ``BaseTool`` objects, ``@tool`` or plain functions (with a
                docstring), pydantic classes, TypedDicts or JSON-schema/OpenAI
                function dicts. Provider built-in tools are not available
                through the gateway.
            tool_choice: ``"auto"``, ``"none"``, ``"required"``, ``"any"`` (same
                as ``"required"``), a tool name, ``True`` (the single bound tool)
                or ``{"type": "function", "function": {"name": ...}}``.
                ``None``/``False`` send nothing (the model decides).
            strict: ``True`` asks the model to follow the schemas exactly; it
                raises on models known not to support it. ``False`` is sent
                only where ``strict`` is understood. ``None`` sends nothing.
            parallel_tool_calls: ``False`` asks for at most one call per turn;
                raises on models known to reject the parameter.
            response_format: A JSON-schema ``response_format`` dict (or a
                schema class) to shape a final answer that calls no tool, as
                ``create_agent``'s provider strategy does.
            **kwargs: Other request parameters, bound as-is.

        Returns:
            The model with the tools bound (a ``Runnable`` returning an
            ``AIMessage``).

        Raises:
            HolySheepInputError: Before any request, for a tool that cannot be
                converted, a bad ``tool_choice``, or a form the model does not
                support.
        """
        from langchain_holysheep._tools import tool_kwargs  # noqa: PLC0415

        model = kwargs.get("model", self.model_name)
        kwargs.update(
            tool_kwargs(
                tools,
                model,
                tool_choice=tool_choice,
                strict=strict,
                parallel_tool_calls=parallel_tool_calls,
                response_format=response_format,
                adapt=self._on_drop is not None,
            )
        )
        return self.bind(**kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["json_schema", "function_calling", "json_mode"] | None = None,
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Return a runnable whose output follows ``schema``.

        Args:
            schema: A pydantic class (output: an instance of it), a TypedDict or
                a JSON-schema/OpenAI function dict (output: a dict). May be
                ``None`` only with ``method="json_mode"``.
            method: ``"json_schema"`` (the gateway's ``response_format``
                JSON schema, strict where the model supports it),
                ``"function_calling"`` (a forced tool call) or ``"json_mode"``
                (``response_format={"type": "json_object"}``: say "JSON" and
                describe the fields in the prompt). ``None`` picks per model:
                ``json_schema`` where supported, else ``function_calling``
                (also for unknown models).
            include_raw: Return ``{"raw", "parsed", "parsing_error"}`` instead
                of raising on a parsing error or a refusal.
            strict: ``None`` sends ``strict`` with ``json_schema`` where the
                model supports it and the schema allows it (every property
                required); ``True``/``False`` as for ``bind_tools``.
            **kwargs: Other request parameters, bound as-is.

        Returns:
            A runnable taking the model's input.

        Raises:
            HolySheepInputError: Before any request, for an unknown method, a
                method the model does not support, a missing schema, or
                ``strict`` with ``json_mode``.

        The runnable raises ``langchain_core.exceptions.ModelRefusalError`` when
        the model refuses, ``HolySheepIncompleteOutputError`` when the answer
        was cut off (``finish_reason: "length"``, or JSON that ends early:
        never a partial value), and ``HolySheepStructuredOutputError`` (an
        ``OutputParserException``) when it has no tool call or is not valid
        JSON (never a silent ``None``); with ``include_raw=True`` these go to
        ``parsing_error``.
        """
        from langchain_holysheep._structured import (  # noqa: PLC0415
            structured_output,
        )

        return structured_output(
            self,
            kwargs.get("model", self.model_name),
            schema,
            method=method,
            include_raw=include_raw,
            strict=strict,
            bind_kwargs=kwargs,
        )

    # ----------------------------------------------------------- the calls
    @_signature_computed_once
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002 (no tokens)
        **kwargs: Any,
    ) -> ChatResult:
        options, total = self._time_bounds(kwargs)
        body = self._request_body(messages, stop, kwargs, stream=False)
        model = body["model"]
        config = self._client_config(self.http_client)
        client = get_sync_client(config)
        self._ensure_served(config, model)
        deadline = None if total is None else Deadline(total)
        reserved = 0
        if (limiter := self._holysheep_limiter()) is not None:
            reserved = limiter.reserve_chat(messages, body, deadline=deadline)
        start = perf_counter()
        try:
            with watching(limiter, model):
                end, result = post_json(
                    client,
                    _CHAT_PATH,
                    body,
                    options,
                    self._parser(model),
                    deadline=deadline,
                )
        except Exception as error:
            self._enrich_not_found(error, config, model)
            raise
        _add_call_metadata(result.generations, model, start, None, end)
        _settle(limiter, body, reserved, result.generations)
        return result

    @_signature_computed_once
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        options, total = self._time_bounds(kwargs)
        body = self._request_body(messages, stop, kwargs, stream=False)
        model = body["model"]
        config = self._client_config(self.http_async_client)
        client = await get_async_client(config)
        await self._aensure_served(config, model)
        deadline = None if total is None else Deadline(total)
        reserved = 0
        if (limiter := self._holysheep_limiter()) is not None:
            reserved = await limiter.areserve_chat(messages, body, deadline=deadline)
        start = perf_counter()
        try:
            with watching(limiter, model):
                end, result = await apost_json(
                    client,
                    _CHAT_PATH,
                    body,
                    options,
                    self._parser(model),
                    deadline=deadline,
                )
        except Exception as error:
            await self._aenrich_not_found(error, config, model)
            raise
        _add_call_metadata(result.generations, model, start, None, end)
        _settle(limiter, body, reserved, result.generations)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        options, total = self._time_bounds(kwargs)
        body = self._request_body(messages, stop, kwargs, stream=True)
        config = self._client_config(self.http_client)
        client = get_sync_client(config)
        self._ensure_served(config, body["model"])
        deadline = None if total is None else Deadline(total)
        reserved = 0
        if (limiter := self._holysheep_limiter()) is not None:
            reserved = limiter.reserve_chat(messages, body, deadline=deadline)
        start = perf_counter()
        with watching(limiter, body["model"]):
            try:
                stream = open_sse(client, _CHAT_PATH, body, options, deadline=deadline)
            except Exception as error:
                if not self._retry_without_stream_options(error, body):
                    self._enrich_not_found(error, config, body["model"])
                    raise
                stream = open_sse(client, _CHAT_PATH, body, options, deadline=deadline)
        state = StreamState(body["model"])
        first: float | None = None
        with closing(stream), self._translate_errors(state.partial_text, deadline):
            for data in stream_events(stream, deadline):
                if (chunk := state.feed(data)) is not None:
                    if first is None:
                        first = perf_counter()
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            final = state.last_chunk(
                stream.response.request, allow_empty=self.allow_empty_answer
            )
            _add_call_metadata([final], body["model"], start, first, perf_counter())
            _settle(limiter, body, reserved, [final])
            yield final

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        options, total = self._time_bounds(kwargs)
        body = self._request_body(messages, stop, kwargs, stream=True)
        config = self._client_config(self.http_async_client)
        client = await get_async_client(config)
        await self._aensure_served(config, body["model"])
        deadline = None if total is None else Deadline(total)
        reserved = 0
        if (limiter := self._holysheep_limiter()) is not None:
            reserved = await limiter.areserve_chat(messages, body, deadline=deadline)
        start = perf_counter()
        with watching(limiter, body["model"]):
            try:
                stream = await aopen_sse(
                    client, _CHAT_PATH, body, options, deadline=deadline
                )
            except Exception as error:
                if not self._retry_without_stream_options(error, body):
                    await self._aenrich_not_found(error, config, body["model"])
                    raise
                stream = await aopen_sse(
                    client, _CHAT_PATH, body, options, deadline=deadline
                )
        state = StreamState(body["model"])
        first: float | None = None
        try:
            with self._translate_errors(state.partial_text, deadline):
                async for data in astream_events(stream, deadline):
                    if (chunk := state.feed(data)) is not None:
                        if first is None:
                            first = perf_counter()
                        if run_manager:
                            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
                final = state.last_chunk(
                    stream.response.request, allow_empty=self.allow_empty_answer
                )
                _add_call_metadata([final], body["model"], start, first, perf_counter())
                _settle(limiter, body, reserved, [final])
                yield final
        finally:
            await stream.close()

    # ---- rate limiting
    # A HolySheepRateLimiter is applied by the four methods above: one call
    # reserves the request, its tokens and its model's limits once the body is
    # known, and a 429 on the wire (``watching``) blocks the fleet.
    # langchain-core acquires the limiter before them, with no request at hand;
    # these overrides run core's path in a scope where that acquire is a no-op,
    # so each request is counted once, in one Redis round trip.
    def _holysheep_limiter(self) -> HolySheepRateLimiter | None:
        """The model's limiter if it is a ``HolySheepRateLimiter``."""
        limiter = self.rate_limiter
        return limiter if isinstance(limiter, HolySheepRateLimiter) else None

    def _generate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if (limiter := self._holysheep_limiter()) is None:
            return super()._generate_with_cache(messages, stop, run_manager, **kwargs)
        with reserved_by_model(limiter):
            return super()._generate_with_cache(messages, stop, run_manager, **kwargs)

    async def _agenerate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if (limiter := self._holysheep_limiter()) is None:
            return await super()._agenerate_with_cache(
                messages, stop, run_manager, **kwargs
            )
        with reserved_by_model(limiter):
            return await super()._agenerate_with_cache(
                messages, stop, run_manager, **kwargs
            )

    def stream(
        self,
        input: LanguageModelInput,  # noqa: A002 (BaseChatModel's name)
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Stream the answer (``BaseChatModel.stream``).

        Args:
            input: The prompt.
            config: The runnable config.
            stop: Stop sequences.
            **kwargs: Request parameters.

        Returns:
            The answer's chunks.
        """
        chunks = super().stream(input, config, stop=stop, **kwargs)
        limiter = self._holysheep_limiter()
        return chunks if limiter is None else first_step_reserved(limiter, chunks)

    def astream(
        self,
        input: LanguageModelInput,  # noqa: A002 (BaseChatModel's name)
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Stream the answer asynchronously (``BaseChatModel.astream``).

        Args:
            input: The prompt.
            config: The runnable config.
            stop: Stop sequences.
            **kwargs: Request parameters.

        Returns:
            The answer's chunks.
        """
        chunks = super().astream(input, config, stop=stop, **kwargs)
        limiter = self._holysheep_limiter()
        return chunks if limiter is None else afirst_step_reserved(limiter, chunks)

    # ---- fallbacks
    def with_model_fallbacks(
        self, fallbacks: Sequence[BaseChatModel | str], **options: Any
    ) -> ChatHolySheepFallback:
        """Return a chat model that falls over from this model to ``fallbacks``.

        Model ids are built from this model's settings (sharing its connection
        pool). Members run with SDK retries off; the chain owns the retry budget.

        .. code-block:: python

            llm = ChatHolySheep(model="mistral-small-2603").with_model_fallbacks(
                ["gemini-2.5-flash", "deepseek-v3.2"]
            )

        Args:
            fallbacks: Model ids, ``ChatHolySheep`` models or any chat models,
                tried in order after this one.
            **options: ``ChatHolySheepFallback`` options (``fallback_on``,
                ``max_retries``, ``max_retry_after``, ``circuit_breaker``,
                ``response_checks``...).

        Returns:
            The fallback chain, itself a chat model.
        """
        from langchain_holysheep.fallback import (  # noqa: PLC0415
            ChatHolySheepFallback,
        )

        return ChatHolySheepFallback(models=[self, *fallbacks], **options)

    # ------------------------------------------------------------ internals
    def _time_bounds(
        self, kwargs: dict[str, Any]
    ) -> tuple[openai.RequestOptions, float | None]:
        """The call's SDK options and ``total_timeout``, taken out of its kwargs.

        A per-call ``timeout``/``total_timeout`` bounds this call; neither is
        sent to the gateway.

        Raises:
            HolySheepInputError: A per-call bound is not a positive number.
        """
        if (
            self.total_timeout is None
            and "timeout" not in kwargs
            and "total_timeout" not in kwargs
        ):
            return self._request_options(), None  # the usual call
        timeout = per_call_seconds(kwargs.pop("timeout", None), "timeout")
        total = per_call_seconds(kwargs.pop("total_timeout", None), "total_timeout")
        if total is None:
            total = self.total_timeout
        return self._request_options(timeout, total), total

    def _parser(self, model: str) -> Callable[[object], tuple[float, ChatResult]]:
        """How a completion for ``model`` is read.

        An answer that says nothing raises, unless ``allow_empty_answer``.
        """
        allow_empty = self.allow_empty_answer
        return lambda data: _timed_result(data, model, allow_empty=allow_empty)

    def _request_body(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        """The JSON body (see ``_convert.build_request``), checked for the model."""
        return build_request(
            self._default_params,
            kwargs,
            messages,
            get_capabilities,
            stream=stream,
            stop=stop,
            extra_body=self.extra_body,
            stream_usage=self.stream_usage,
            no_stream_options=_STREAM_OPTIONS_REJECTED.get(self.base_url, ()),
            on_drop=self._on_drop,
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
        _STREAM_OPTIONS_REJECTED.setdefault(self.base_url, set()).add(body["model"])
        return True

    # ----------------------------------- model catalog: validation, did-you-mean
    def _ensure_served(self, config: ClientConfig, model: str) -> None:
        """``validate_model=True``: refuse an id the catalog does not list (once)."""
        if self.validate_model and model not in self._validated_models:
            from langchain_holysheep.catalog import ensure_served  # noqa: PLC0415

            options = self._request_options()
            ensure_served(config, model, options=options, base_url=self.base_url)
            self._validated_models.add(model)

    async def _aensure_served(self, config: ClientConfig, model: str) -> None:
        """Async :meth:`_ensure_served`."""
        if self.validate_model and model not in self._validated_models:
            from langchain_holysheep.catalog import aensure_served  # noqa: PLC0415

            options = self._request_options()
            await aensure_served(config, model, options=options, base_url=self.base_url)
            self._validated_models.add(model)

    def _enrich_not_found(
        self, error: Exception, config: ClientConfig, model: str
    ) -> None:
        """Re-raise a 404 for an unknown model with suggestions (``catalog``)."""
        from langchain_holysheep.catalog import enrich_not_found  # noqa: PLC0415

        enrich_not_found(
            error,
            config,
            model,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
        )

    async def _aenrich_not_found(
        self, error: Exception, config: ClientConfig, model: str
    ) -> None:
        """Async :meth:`_enrich_not_found`."""
        from langchain_holysheep.catalog import aenrich_not_found  # noqa: PLC0415

        await aenrich_not_found(
            error,
            config,
            model,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
        )
