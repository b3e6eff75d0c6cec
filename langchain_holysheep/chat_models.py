"""``ChatHolySheep``: the HolySheep gateway as a LangChain chat model."""

from __future__ import annotations

import inspect
import logging
import warnings
from contextlib import closing
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages.utils import count_tokens_approximately
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
    completion_to_result,
    encode_body,
    messages_to_dicts,
)
from langchain_holysheep._settings import (
    DEFAULT_BASE_URL,
    GatewaySettings,
    sdk_timeout,
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
    from langchain_core.messages import AIMessage, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.runnables import Runnable
    from langchain_core.tools import BaseTool
    from pydantic import BaseModel

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
# are remembered per (base_url, model) for the life of the process.
_STREAM_OPTIONS_REJECTED: set[tuple[str, str]] = set()
# A catalog fetched only to enrich a 404 must answer fast, or not at all.
_QUICK_CATALOG_TIMEOUT: Final = 3.0
_logger = logging.getLogger(__name__)
_F = TypeVar("_F", bound="Callable[..., Any]")


def _call_cost(
    served: str, requested: str, usage: Any, metadata: dict[str, Any]
) -> tuple[float | None, str | None]:
    """``(cost_usd, cost_source)`` of one call, by ``pricing.resolve_call_cost``."""
    from langchain_holysheep.pricing import resolve_call_cost  # noqa: PLC0415

    try:
        cost = resolve_call_cost(served, usage, metadata, requested_model=requested)
    except ValueError as error:  # a broken HOLYSHEEP_PRICES_FILE, odd usage
        _logger.warning("No cost for this %s call: %s", served, error)
        return None, None
    return (None, None) if cost is None else (cost.usd, cost.source)


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


class ChatHolySheep(BaseChatModel, GatewaySettings):
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

    # ---- tools and structured output
    # Capabilities come from ``_profiles`` (exact model ids). Known models get
    # clear errors, before any request, for what they cannot do; unknown models
    # get the request as asked. ``strict`` policy: ``strict=True`` on a model
    # known not to honour it raises (a guarantee is never silently dropped);
    # ``strict=False`` is sent only where ``strict`` is understood.

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
        from langchain_holysheep._profiles import get_capabilities  # noqa: PLC0415

        model = kwargs.get("model", self.model_name)
        capabilities = get_capabilities(model)
        if capabilities is not None and tools and not capabilities.tool_calling:
            raise self._input_error(f"Model {model!r} does not support tool calling.")
        formatted = [self._format_tool(t, strict, model) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        choice = self._tool_choice(tool_choice, names)
        if choice is not None:
            if (
                capabilities is not None
                and not capabilities.tool_choice
                and choice not in {"auto", "none"}
            ):
                raise self._input_error(
                    f"Model {model!r} cannot be forced to call a tool "
                    f"(tool_choice={tool_choice!r}). Leave tool_choice unset."
                )
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            if capabilities is not None and not capabilities.parallel_tool_calls:
                raise self._input_error(
                    f"Model {model!r} does not accept parallel_tool_calls; leave "
                    "it unset (tool results can still be handled one by one)."
                )
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        if response_format is not None:
            kwargs["response_format"] = self._response_format(
                response_format, None, model
            )
        if formatted:
            kwargs["tools"] = formatted
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
        the model refuses, and ``OutputParserException`` when the answer has no
        tool call or is not valid JSON (never a silent ``None``); with
        ``include_raw=True`` both go to ``parsing_error``.
        """
        from langchain_core.output_parsers import (  # noqa: PLC0415
            JsonOutputKeyToolsParser,
            JsonOutputParser,
            PydanticOutputParser,
            PydanticToolsParser,
        )
        from langchain_core.utils.pydantic import is_basemodel_subclass  # noqa: PLC0415

        from langchain_holysheep._profiles import (  # noqa: PLC0415
            default_structured_output_method,
            get_capabilities,
        )

        model = kwargs.get("model", self.model_name)
        chosen = method or default_structured_output_method(model)
        if chosen not in {"json_schema", "function_calling", "json_mode"}:
            raise self._input_error(
                f"Unknown method {method!r}: use 'json_schema', "
                "'function_calling' or 'json_mode' (or leave it unset)."
            )
        capabilities = get_capabilities(model)
        if (
            capabilities is not None
            and chosen not in capabilities.structured_output_methods
        ):
            supported = sorted(capabilities.structured_output_methods)
            raise self._input_error(
                f"Model {model!r} does not support method={chosen!r}; use one of "
                f"{supported}, or leave method unset to pick the best one."
            )
        if strict is not None and chosen == "json_mode":
            raise self._input_error("strict cannot be used with method='json_mode'.")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        trace = {"kwargs": {"method": chosen, "strict": strict}, "schema": schema}
        parser: Runnable[Any, Any]
        tool_name = None
        if chosen == "function_calling":
            if schema is None:
                raise self._input_error("method='function_calling' needs a schema.")
            tool_name = self._format_tool(schema, None, model)["function"]["name"]
            if capabilities is not None and capabilities.parallel_tool_calls:
                kwargs["parallel_tool_calls"] = False
            llm = self.bind_tools(
                [schema],
                tool_choice=tool_name,
                strict=strict,
                ls_structured_output_format=trace,
                **kwargs,
            )
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
            )
        else:
            if chosen == "json_schema":
                if schema is None:
                    raise self._input_error("method='json_schema' needs a schema.")
                kwargs["response_format"] = self._response_format(schema, strict, model)
            else:
                kwargs["response_format"] = {"type": "json_object"}
            llm = self.bind(ls_structured_output_format=trace, **kwargs)
            parser = (
                PydanticOutputParser(pydantic_object=schema)
                if is_pydantic
                else JsonOutputParser()
            )
        checked = self._structured_output_check(tool_name, parser) | parser
        if not include_raw:
            return llm | checked
        from operator import itemgetter  # noqa: PLC0415

        from langchain_core.runnables import (  # noqa: PLC0415
            RunnableMap,
            RunnablePassthrough,
        )

        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | checked, parsing_error=lambda _: None
        )
        unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks(
            [unparsed], exception_key="parsing_error"
        )

    @staticmethod
    def _input_error(message: str) -> Exception:
        """A ``HolySheepInputError`` to raise (caught before any request)."""
        from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415

        return HolySheepInputError(message)

    @classmethod
    def _format_tool(
        cls,
        tool: dict[str, Any] | type | Callable[..., Any] | BaseTool,
        strict: bool | None,
        model: object,
    ) -> dict[str, Any]:
        """One tool as a chat-completions function tool, ``strict`` applied."""
        from langchain_core.utils.function_calling import (  # noqa: PLC0415
            convert_to_openai_tool,
        )

        from langchain_holysheep._profiles import get_capabilities  # noqa: PLC0415

        try:
            spec = convert_to_openai_tool(tool, strict=strict)
        except Exception as error:  # core raises several types
            raise cls._input_error(
                f"Cannot use {tool!r} as a tool: {error}. Pass a BaseTool, a "
                "function with a docstring, a pydantic class, a TypedDict or an "
                "OpenAI function schema with a name."
            ) from error
        if spec.get("type") != "function":
            raise cls._input_error(
                f"Tool {tool!r} is a provider built-in ({spec.get('type')!r}); "
                "only function tools work through the gateway."
            )
        function = spec.get("function")
        if function is None:  # Responses-API style: the function fields inline
            function = {k: v for k, v in spec.items() if k != "type"}
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise cls._input_error(f"Tool {tool!r} has no function name.")
        function = dict(function)
        given = function.pop("strict", None)
        wanted = given if strict is None else strict
        capabilities = get_capabilities(model)
        supported = capabilities is None or capabilities.strict_tools
        if wanted is True and not supported:
            raise cls._input_error(
                f"Model {model!r} does not support strict tool schemas; remove "
                "strict=True (tool arguments are still validated by LangChain)."
            )
        if isinstance(wanted, bool) and supported:
            function["strict"] = wanted
            if wanted and "parameters" in function:
                function["parameters"] = cls._closed_schema(function["parameters"])
        return {"type": "function", "function": function}

    @classmethod
    def _tool_choice(
        cls, choice: dict[str, Any] | str | bool | None, names: list[str]
    ) -> dict[str, Any] | str | None:
        """Normalize ``tool_choice`` to the wire form, or raise on a bad one."""
        if choice is None or choice is False:
            return None
        if not names:
            raise cls._input_error(f"tool_choice={choice!r} needs at least one tool.")
        if choice is True:
            if len(names) != 1:
                raise cls._input_error(
                    f"tool_choice=True names no tool among {names}; pass a tool "
                    "name, or 'required' to force any of them."
                )
            choice = names[0]
        if isinstance(choice, dict):
            choice = cls._named_tool_choice(choice, names)
        if not isinstance(choice, str):
            raise cls._input_error(
                f"tool_choice must be a string, a bool or a dict, not {choice!r}."
            )
        if choice in names:
            return {"type": "function", "function": {"name": choice}}
        if choice in {"auto", "none", "required"}:
            return choice
        if choice == "any":  # LangChain's name for "required"
            return "required"
        raise cls._input_error(
            f"tool_choice={choice!r} is neither 'auto', 'none', 'required', "
            f"'any' nor a bound tool name ({names})."
        )

    @classmethod
    def _named_tool_choice(cls, choice: dict[str, Any], names: list[str]) -> str:
        """The tool name of an OpenAI-style ``tool_choice`` dict."""
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if choice.get("type") != "function" or not isinstance(name, str):
            raise cls._input_error(
                f"tool_choice={choice!r} is not of the form "
                "{'type': 'function', 'function': {'name': ...}}."
            )
        if name not in names:
            raise cls._input_error(f"tool_choice names {name!r}, not one of {names}.")
        return name

    @classmethod
    def _response_format(
        cls, schema: dict[str, Any] | type, strict: bool | None, model: object
    ) -> dict[str, Any]:
        """A ``json_schema``/``json_object`` response format, checked for ``model``."""
        from langchain_holysheep._profiles import get_capabilities  # noqa: PLC0415

        capabilities = get_capabilities(model)
        if isinstance(schema, dict) and schema.get("type") in {"json_object", "text"}:
            if (
                schema["type"] == "json_object"
                and capabilities is not None
                and "json_mode" not in capabilities.structured_output_methods
            ):
                raise cls._input_error(f"Model {model!r} does not support JSON mode.")
            return dict(schema)
        if capabilities is not None and (
            "json_schema" not in capabilities.structured_output_methods
        ):
            raise cls._input_error(
                f"Model {model!r} does not accept a JSON-schema response_format; "
                "use method='function_calling' (or leave method unset)."
            )
        json_schema = cls._json_schema_of(schema)
        given = json_schema.pop("strict", None)
        wanted = given if strict is None else strict
        supported = capabilities is None or capabilities.strict_json_schema
        if wanted is True and not supported:
            raise cls._input_error(
                f"Model {model!r} does not support strict JSON schemas; remove "
                "strict=True."
            )
        if wanted is None and capabilities is not None and supported:
            wanted = cls._strict_compatible(json_schema.get("schema"))
        if isinstance(wanted, bool) and supported:
            json_schema["strict"] = wanted
            if wanted:
                json_schema["schema"] = cls._closed_schema(json_schema["schema"])
        return {"type": "json_schema", "json_schema": json_schema}

    @classmethod
    def _json_schema_of(cls, schema: dict[str, Any] | type) -> dict[str, Any]:
        """The ``json_schema`` member of a response format (``strict`` as given)."""
        from langchain_core.utils.function_calling import (  # noqa: PLC0415
            convert_to_openai_function,
        )

        if isinstance(schema, dict) and schema.get("type") == "json_schema":
            return dict(schema.get("json_schema") or {})
        if isinstance(schema, dict) and "name" in schema and "schema" in schema:
            return dict(schema)
        try:
            function = convert_to_openai_function(schema)
        except Exception as error:  # core raises several types
            raise cls._input_error(
                f"Cannot use {schema!r} as an output schema: {error}. Pass a "
                "pydantic class, a TypedDict or a JSON schema with a title."
            ) from error
        json_schema: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            json_schema["description"] = function["description"]
        json_schema["schema"] = function.get("parameters") or {"type": "object"}
        return json_schema

    @classmethod
    def _strict_compatible(cls, schema: object) -> bool:
        """Whether strict mode accepts ``schema`` (every property required)."""
        if isinstance(schema, list):
            return all(cls._strict_compatible(item) for item in schema)
        if not isinstance(schema, dict):
            return True
        properties = schema.get("properties")
        if isinstance(properties, dict) and set(properties) - set(
            schema.get("required") or ()
        ):
            return False
        return all(cls._strict_compatible(value) for value in schema.values())

    @classmethod
    def _closed_schema(cls, schema: Any) -> Any:
        """Add ``additionalProperties: false`` to every object (strict needs it)."""
        if isinstance(schema, list):
            return [cls._closed_schema(item) for item in schema]
        if not isinstance(schema, dict):
            return schema
        closed = {key: cls._closed_schema(value) for key, value in schema.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed

    @staticmethod
    def _raise_on_refusal(message: BaseMessage) -> None:
        """Raise ``ModelRefusalError`` if the model refused or was filtered."""
        from langchain_core.exceptions import ModelRefusalError  # noqa: PLC0415

        refusal = message.additional_kwargs.get("refusal")
        if refusal:
            msg = f"The model refused: {refusal}"
            raise ModelRefusalError(msg, raw_message=message)
        if message.response_metadata.get("finish_reason") == "content_filter":
            msg = "The answer was stopped by the provider's content filter."
            raise ModelRefusalError(msg, raw_message=message)

    @classmethod
    def _check_structured_message(
        cls, message: BaseMessage, tool_name: str | None
    ) -> None:
        """Raise unless ``message`` holds the structured output (whole message)."""
        import json  # noqa: PLC0415

        from langchain_core.exceptions import OutputParserException  # noqa: PLC0415
        from langchain_core.utils.json import parse_json_markdown  # noqa: PLC0415

        cls._raise_on_refusal(message)
        text = message.text
        if tool_name is None:
            try:
                parse_json_markdown(text)
            except ValueError as error:
                msg = f"The model's answer is not valid JSON ({error}): {text[:300]!r}"
                raise OutputParserException(msg, llm_output=text) from error
            return
        for piece in getattr(message, "tool_call_chunks", ()):
            # Streamed arguments are parsed leniently (partial JSON is closed),
            # so check the finished argument string strictly.
            if piece.get("name") == tool_name and piece.get("args"):
                try:
                    json.loads(piece["args"])
                except ValueError as error:
                    msg = (
                        f"The model called {tool_name!r} with arguments that are "
                        f"not valid JSON ({error}): {piece['args']!r}"
                    )
                    raise OutputParserException(
                        msg, llm_output=piece["args"]
                    ) from error
        if any(c["name"] == tool_name for c in getattr(message, "tool_calls", ())):
            return
        for bad in getattr(message, "invalid_tool_calls", ()):
            if bad.get("name") in {tool_name, None}:
                msg = (
                    f"The model called {tool_name!r} with arguments that are not "
                    f"valid JSON: {bad.get('args')!r}"
                )
                raise OutputParserException(msg, llm_output=bad.get("args") or "")
        msg = (
            f"The model answered without calling {tool_name!r}, so there is no "
            f"structured output. Its answer: {text[:300]!r}"
        )
        raise OutputParserException(msg, llm_output=text)

    @classmethod
    def _structured_output_check(
        cls, tool_name: str | None, parser: Runnable[Any, Any]
    ) -> Runnable[Any, Any]:
        """Pass messages through; raise on a refusal or on unusable output.

        Chunks flow on as they arrive (structured output still streams) until
        a refusal starts, which is collected whole; the whole message is
        checked at the end, so a refusal, a missing tool call or invalid JSON
        is an error, never a silent ``None``.
        """
        from langchain_core.runnables import RunnableGenerator  # noqa: PLC0415

        def transform(messages: Iterator[BaseMessage]) -> Iterator[BaseMessage]:
            whole: Any = None
            for message in messages:
                whole = message if whole is None else whole + message
                if not whole.additional_kwargs.get("refusal"):
                    yield message
            if whole is not None:
                cls._check_structured_message(whole, tool_name)
                parser.invoke(whole)  # a stream's parser only parses partially

        async def atransform(
            messages: AsyncIterator[BaseMessage],
        ) -> AsyncIterator[BaseMessage]:
            whole: Any = None
            async for message in messages:
                whole = message if whole is None else whole + message
                if not whole.additional_kwargs.get("refusal"):
                    yield message
            if whole is not None:
                cls._check_structured_message(whole, tool_name)
                await parser.ainvoke(whole)

        return RunnableGenerator(transform, atransform)

    # ----------------------------------------------------------- the calls
    @_signature_computed_once
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
        self._validate_model_id(config, body["model"])
        start = perf_counter()
        try:
            with self._translate_errors():
                data = client.post(
                    _CHAT_PATH,
                    content=encode_body(body),
                    cast_to=object,
                    options=self._request_options(),
                )
                end = perf_counter()
                result = completion_to_result(data)
        except Exception as error:
            self._raise_with_suggestions(error, config, body["model"])
            raise
        _add_call_metadata(result.generations, body["model"], start, None, end)
        return result

    @_signature_computed_once
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        body = self._request_body(messages, stop, kwargs, stream=False)
        config = self._client_config(self.http_async_client)
        client = await get_async_client(config)
        await self._avalidate_model_id(config, body["model"])
        start = perf_counter()
        try:
            with self._translate_errors():
                data = await client.post(
                    _CHAT_PATH,
                    content=encode_body(body),
                    cast_to=object,
                    options=self._request_options(),
                )
                end = perf_counter()
                result = completion_to_result(data)
        except Exception as error:
            await self._araise_with_suggestions(error, config, body["model"])
            raise
        _add_call_metadata(result.generations, body["model"], start, None, end)
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        body = self._request_body(messages, stop, kwargs, stream=True)
        config = self._client_config(self.http_client)
        client = get_sync_client(config)
        self._validate_model_id(config, body["model"])
        start = perf_counter()
        try:
            stream = self._open_stream(client, body)
        except Exception as error:
            if not self._retry_without_stream_options(error, body):
                self._raise_with_suggestions(error, config, body["model"])
                raise
            stream = self._open_stream(client, body)
        state = StreamState()
        first: float | None = None
        with closing(stream), self._translate_errors(partial=state.partial_text):
            for data in stream:
                if (chunk := state.feed(data)) is not None:
                    if first is None:
                        first = perf_counter()
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            final = self._finish_stream(state, stream.response.request)
            _add_call_metadata([final], body["model"], start, first, perf_counter())
            yield final

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        body = self._request_body(messages, stop, kwargs, stream=True)
        config = self._client_config(self.http_async_client)
        client = await get_async_client(config)
        await self._avalidate_model_id(config, body["model"])
        start = perf_counter()
        try:
            stream = await self._aopen_stream(client, body)
        except Exception as error:
            if not self._retry_without_stream_options(error, body):
                await self._araise_with_suggestions(error, config, body["model"])
                raise
            stream = await self._aopen_stream(client, body)
        state = StreamState()
        first: float | None = None
        try:
            with self._translate_errors(partial=state.partial_text):
                async for data in stream:
                    if (chunk := state.feed(data)) is not None:
                        if first is None:
                            first = perf_counter()
                        if run_manager:
                            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
                final = self._finish_stream(state, stream.response.request)
                _add_call_metadata([final], body["model"], start, first, perf_counter())
                yield final
        finally:
            await stream.close()

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
                msg = "n > 1 cannot be streamed; call invoke() for several choices."
                raise self._input_error(msg)
            body["stream"] = True
            if stream_usage and (self.base_url, body["model"]) not in (
                _STREAM_OPTIONS_REJECTED
            ):
                body["stream_options"] = {"include_usage": True}
        from langchain_holysheep._profiles import get_capabilities  # noqa: PLC0415

        # The model's own rules; an unknown model has none (sent as asked).
        known = get_capabilities(body["model"])
        body["messages"] = messages_to_dicts(
            messages,
            echo_reasoning=known is not None and known.echo_reasoning,
            short_tool_call_ids=known is not None and known.short_tool_call_ids,
        )
        body.update(extra_body)
        if (
            known is not None
            and known.one_sampling_parameter
            and None not in (body.get("temperature"), body.get("top_p"))
        ):
            msg = (
                f"{body['model']} does not accept temperature and top_p in the same "
                "request (its API answers 400). Set only one of them."
            )
            raise self._input_error(msg)
        return body

    def _open_stream(self, client: openai.OpenAI, body: dict[str, Any]) -> Any:
        import openai  # noqa: PLC0415

        with self._translate_errors():
            return client.post(
                _CHAT_PATH,
                content=encode_body(body),
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
                content=encode_body(body),
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
                f"{len(state.partial_text())} characters were received and are kept in "
                "error.partial_text. Retry the request."
            )
            raise HolySheepTruncatedStreamError(msg, request, body=None)
        return state.finish()

    # ------------------------------------- model catalog: validation, did-you-mean
    def _catalog_options(self, *, quick: bool) -> openai.RequestOptions:
        """Options for ``GET /models``; ``quick`` when it only enriches an error."""
        if not quick:
            return self._request_options()
        return {
            "timeout": sdk_timeout(
                min(self.timeout, _QUICK_CATALOG_TIMEOUT),
                min(self.connect_timeout, _QUICK_CATALOG_TIMEOUT),
            ),
            "max_retries": 0,
        }

    def _needs_validation(self, model: str) -> bool:
        return self.validate_model and model not in self._validated_models

    def _validate_model_id(self, config: ClientConfig, model: str) -> None:
        """``validate_model=True``: refuse an id the catalog does not list."""
        if not self._needs_validation(model):
            return
        from langchain_holysheep.models import (  # noqa: PLC0415
            model_ids_for_config,
            model_not_found_error,
        )

        ids = model_ids_for_config(config, options=self._catalog_options(quick=False))
        if model not in ids:
            raise model_not_found_error(model, ids, base_url=self.base_url)
        self._validated_models.add(model)

    async def _avalidate_model_id(self, config: ClientConfig, model: str) -> None:
        """Async :meth:`_validate_model_id`."""
        if not self._needs_validation(model):
            return
        from langchain_holysheep.models import (  # noqa: PLC0415
            amodel_ids_for_config,
            model_not_found_error,
        )

        ids = await amodel_ids_for_config(
            config, options=self._catalog_options(quick=False)
        )
        if model not in ids:
            raise model_not_found_error(model, ids, base_url=self.base_url)
        self._validated_models.add(model)

    def _raise_with_suggestions(
        self, error: Exception, config: ClientConfig, model: str
    ) -> None:
        """Re-raise a chat 404 for an unknown model with the catalog's suggestions.

        Returns (so the caller re-raises ``error`` unchanged) unless ``error`` is
        a model-not-found error, the catalog answers quickly, and it does not
        list ``model``.
        """
        from langchain_holysheep.errors import (  # noqa: PLC0415
            HolySheepError,
            HolySheepModelNotFoundError,
        )
        from langchain_holysheep.models import (  # noqa: PLC0415
            model_ids_for_config,
            model_not_found_error,
        )

        if not isinstance(error, HolySheepModelNotFoundError) or error.suggestions:
            return
        try:
            ids = model_ids_for_config(
                config, options=self._catalog_options(quick=True)
            )
        except HolySheepError:
            return
        if model not in ids:
            raise model_not_found_error(model, ids, error) from error

    async def _araise_with_suggestions(
        self, error: Exception, config: ClientConfig, model: str
    ) -> None:
        """Async :meth:`_raise_with_suggestions`."""
        from langchain_holysheep.errors import (  # noqa: PLC0415
            HolySheepError,
            HolySheepModelNotFoundError,
        )
        from langchain_holysheep.models import (  # noqa: PLC0415
            amodel_ids_for_config,
            model_not_found_error,
        )

        if not isinstance(error, HolySheepModelNotFoundError) or error.suggestions:
            return
        try:
            ids = await amodel_ids_for_config(
                config, options=self._catalog_options(quick=True)
            )
        except HolySheepError:
            return
        if model not in ids:
            raise model_not_found_error(model, ids, error) from error
