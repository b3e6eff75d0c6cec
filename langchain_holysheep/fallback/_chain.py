"""The fallback chain: a chat model that falls over across models.

:class:`ChatHolySheepFallback` holds the members and the settings and answers
the four chat-model calls; each call walks the members with one
:class:`~langchain_holysheep.fallback._walk.Walk`, so only the I/O differs
between them. :class:`_StructuredFallback` is its ``with_structured_output``:
every member's own structured-output runnable, walked the same way.

Each member keeps its own model's rules: a ``ChatHolySheep`` member is a copy
whose requests leave out what the model can do without (with one warning per
setting), and input the model cannot take at all makes that member a failed
attempt (``HolySheepUnsupportedInputError``) instead of ending the call. The
chain's ``profile`` is what every member's profile has in common.
"""

from __future__ import annotations

import copy
import threading
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn, Self

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableLambda, RunnableSerializable
from langchain_core.runnables.config import patch_config
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from langchain_holysheep._convert import (
    estimate_message_tokens,
    estimate_text_tokens,
    input_error,
    no_token_ids,
)
from langchain_holysheep._deadline import Deadline
from langchain_holysheep._profiles import intersect_profiles, model_profile
from langchain_holysheep._secrets import mask_settings
from langchain_holysheep._settings import (
    HolySheepSerializable,
    init_masking_credentials,
    per_call_seconds,
    restore_key,
    without_key,
)
from langchain_holysheep._structured import reprompt_messages
from langchain_holysheep.chat_models import ChatHolySheep
from langchain_holysheep.errors import HolySheepUnsupportedInputError
from langchain_holysheep.fallback._breaker import (
    CircuitBreakerPolicy,
    CircuitSnapshot,
)
from langchain_holysheep.fallback._member import (
    TOOL_OPTIONS,
    Member,
    Named,
    annotate_chunk,
    aopen_stream,
    apeek,
    model_name,
    name_chunk,
    open_stream,
    peek,
    prepare,
    scope,
)
from langchain_holysheep.fallback._policy import (
    FallbackOn,
    ResponseCheck,
    is_fallback_error,
    is_parse_error,
)
from langchain_holysheep.fallback._shared import get_circuit_breaker
from langchain_holysheep.fallback._walk import Walk

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence

    from langchain_core.callbacks import (
        AsyncCallbackManagerForChainRun,
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForChainRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models import LangSmithParams, LanguageModelInput
    from langchain_core.language_models.model_profile import ModelProfile
    from langchain_core.load.serializable import (
        SerializedConstructor,
        SerializedNotImplemented,
    )
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGenerationChunk, ChatResult
    from langchain_core.runnables import Runnable, RunnableConfig
    from langchain_core.tools import BaseTool

__all__ = ["ChatHolySheepFallback"]


class ChatHolySheepFallback(HolySheepSerializable, BaseChatModel):
    """A chat model that tries several models in order and answers from the first.

    Members are ``ChatHolySheep`` models, model ids (built on first use from the
    first ``ChatHolySheep`` member's settings, or from this chain's
    ``ChatHolySheep`` keyword arguments, sharing one connection pool), or any
    other ``BaseChatModel`` (for cross-provider chains). ``ChatHolySheep``
    members run with SDK retries off: the chain owns the retry budget
    (``max_retries``) and waits for a ``Retry-After`` only up to
    ``max_retry_after`` seconds before moving on.

    Instantiate:
        .. code-block:: python

            from langchain_holysheep import ChatHolySheep

            primary = ChatHolySheep(model="mistral-small-2603", temperature=0)
            llm = primary.with_model_fallbacks(["gemini-2.5-flash", "deepseek-v3.2"])
            # or, all from ids with shared settings:
            llm = ChatHolySheepFallback(
                models=["mistral-small-2603", "gemini-2.5-flash"], temperature=0
            )

    Invoke:
        .. code-block:: python

            msg = llm.invoke("Hello")
            msg.response_metadata["model_name"]  # the model that served
            msg.response_metadata["fallback_attempts"]  # what failed first

    Tools, structured output, agents:
        .. code-block:: python

            llm.bind_tools([get_weather])  # every member's own bind_tools
            llm.with_structured_output(Joke)  # every member's own method
            create_agent(llm, tools=[get_weather])

    When every member fails, :class:`HolySheepFallbackError` (a
    ``HolySheepError`` and an ``ExceptionGroup``) lists each attempt in order.
    See ``docs/fallbacks.md`` for the exact semantics.

    All other methods are private or match ``BaseChatModel``.
    """

    # A validation error would quote its input, the settings' credentials included.
    model_config = ConfigDict(
        arbitrary_types_allowed=True, populate_by_name=True, hide_input_in_errors=True
    )

    if not TYPE_CHECKING:  # type checkers keep pydantic's field signature

        def __init__(self, **data: Any) -> None:
            """Validate the chain; errors never carry a credential."""
            init_masking_credentials(super().__init__, data)

    models: list[BaseChatModel | str] = Field(min_length=1)
    """The members, in the order they are tried (the first is the primary)."""
    fallback_on: tuple[FallbackOn, ...] = (is_fallback_error,)
    """Errors that make the chain try the next member: error types and/or
    predicates (any match triggers). Default: :func:`is_fallback_error`."""
    response_checks: tuple[ResponseCheck, ...] = ()
    """Checks on non-streamed answers (e.g. :func:`empty_content`,
    :func:`finish_reason_length`); a rejected answer falls over."""
    fallback_on_parse_error: bool = True
    """In ``with_structured_output``: an answer that cannot be parsed into the
    schema (not JSON, no tool call, cut off at ``max_tokens``, values that do
    not fit) is a failed attempt, recorded like an error, and the next member
    is asked. ``False`` raises the parse error at once."""
    reprompt_on_parse_error: bool = False
    """In ``with_structured_output``: before moving on from an unparsable
    answer, ask the same member once more, with the parse error added to the
    conversation (both answers are attempts)."""
    max_retries: int = Field(default=0, ge=0)
    """Extra tries of the same member for a retryable error, before moving on.
    The member's own SDK retries are off."""
    max_retry_after: float = Field(default=2.0, ge=0)
    """The longest ``Retry-After`` (seconds) the chain waits to retry a member;
    a longer one moves on at once."""
    total_timeout: float | None = Field(default=None, gt=0)
    """Seconds a whole chain call may take: every attempt, the waits between
    them and the stream, to its last chunk. Past it the call raises
    ``HolySheepTotalTimeoutError`` (a stream's text so far in
    ``partial_text``), never falls over. ``ChatHolySheep`` members get the
    time left as their own ``total_timeout``; other providers' members are
    bounded between attempts only. Default unset; a per-call
    ``total_timeout=`` overrides it."""
    retry_backoff: float = Field(default=0.5, ge=0)
    """Base of the jittered exponential wait between tries of one member when
    the error gave no ``Retry-After`` (capped by ``max_retry_after``)."""
    circuit_breaker: CircuitBreakerPolicy | None = Field(
        default_factory=CircuitBreakerPolicy
    )
    """Breaker policy, shared per (gateway, model, policy) across the process;
    ``None`` (or ``False``) turns breakers off."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """``ChatHolySheep`` settings for members given as ids when no member is a
    ``ChatHolySheep``. ``ChatHolySheep`` keyword arguments passed to the chain
    (``temperature=0``, ``timeout=30``...) land here."""
    api_key: SecretStr | None = None
    """The key for members given as ids (like ``settings``; default
    ``HOLYSHEEP_API_KEY``). Never logged or serialized."""

    _template: ChatHolySheep | None = PrivateAttr(default=None)
    _built: list[Member] | None = PrivateAttr(default=None)
    _build_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # ----------------------------------------------------------- validation
    @model_validator(mode="before")
    @classmethod
    def _collect_settings(cls, values: Any) -> Any:
        """Move ``ChatHolySheep`` keyword arguments into ``settings``."""
        if not isinstance(values, dict):
            return values
        own = set(cls.model_fields) | {
            f.alias for f in cls.model_fields.values() if f.alias
        }
        moved = {k: v for k, v in values.items() if k not in own}
        settings = {**(values.get("settings") or {}), **moved}
        if not moved and "api_key" not in settings:
            return values
        values = {k: v for k, v in values.items() if k in own}
        if "api_key" in settings:  # a key lives in its own secret field
            values.setdefault("api_key", settings.pop("api_key"))
        values["settings"] = settings
        return values

    @field_validator("fallback_on", mode="before")
    @classmethod
    def _check_fallback_on(cls, value: Any) -> tuple[FallbackOn, ...]:
        items = (
            (value,)
            if isinstance(value, type) or callable(value)
            else tuple(value or ())
        )
        if not items:
            msg = (
                "fallback_on is empty, so the chain could never fall over: pass "
                "error types and/or predicates (default: is_fallback_error)."
            )
            raise ValueError(msg)
        for item in items:
            if not callable(item) or (
                isinstance(item, type) and not issubclass(item, BaseException)
            ):
                msg = (
                    f"fallback_on items must be exception types or predicates "
                    f"(error -> bool), got {item!r}."
                )
                raise ValueError(msg)  # noqa: TRY004 (pydantic wants ValueError)
        return items

    @field_validator("circuit_breaker", mode="before")
    @classmethod
    def _check_circuit_breaker(cls, value: Any) -> Any:
        if value is True:
            return CircuitBreakerPolicy()
        if value is False:
            return None
        return value

    @model_validator(mode="after")
    def _check_members(self) -> Self:
        holysheep = [m for m in self.models if isinstance(m, ChatHolySheep)]
        ids = [m for m in self.models if isinstance(m, str)]
        settings = dict(self.settings)
        if self.api_key is not None:
            settings["api_key"] = self.api_key
        if settings:
            if not ids:
                msg = (
                    f"ChatHolySheep settings {sorted(settings)} apply only to "
                    "members given as model ids, and there are none."
                )
                raise ValueError(msg)
            if holysheep:
                msg = (
                    f"ChatHolySheep settings {sorted(settings)} were passed to "
                    "the chain, but members given as ids copy the first ChatHolySheep "
                    "member's settings. Set them on that member instead."
                )
                raise ValueError(msg)
            if {"model", "model_name"} & set(settings):
                msg = "Name the models in models=[...], not with model=."
                raise ValueError(msg)
        if ids:
            self._template = holysheep[0] if holysheep else ChatHolySheep(**settings)
        for member in self.models:
            retries = getattr(member, "max_retries", None)
            if not isinstance(member, (str, ChatHolySheep)) and (
                isinstance(retries, int) and retries > 0
            ):
                warnings.warn(
                    f"Fallback member {model_name(member)!r} retries by itself "
                    f"(max_retries={retries}), which delays failover; build it "
                    "with max_retries=0 and let the chain's max_retries apply.",
                    UserWarning,
                    stacklevel=2,
                )
        return self

    # ------------------------------------------------- serialization overrides
    def _connection_fields(
        self,
    ) -> tuple[str | None, Mapping[str, Any] | None, Mapping[str, Any] | None]:
        """The URL, headers and query of ``settings`` (members given as ids)."""
        return (
            self.settings.get("base_url"),
            self.settings.get("default_headers"),
            self.settings.get("default_query"),
        )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Fields for ``repr``/``str``, with the credentials in ``settings`` masked.

        Members show their own (masked) ``repr``.
        """
        for name, value in super().__repr_args__():
            if name == "settings" and isinstance(value, dict):
                yield name, mask_settings(value)
            else:
                yield name, value

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the key and without built members (they hold locks).

        Members given as ``ChatHolySheep`` pickle without their key too; the
        unpickled chain (and its members) read ``HOLYSHEEP_API_KEY``.
        """
        return {**without_key(super().__getstate__()), "__pydantic_private__": None}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Restore a pickled chain; members are rebuilt lazily, as when new."""
        super().__setstate__(state)
        restore_key(self)
        self._template = None
        self._built = None
        self._build_lock = threading.Lock()
        ids = [m for m in self.models if isinstance(m, str)]
        if ids:
            holysheep = [m for m in self.models if isinstance(m, ChatHolySheep)]
            self._template = (
                holysheep[0] if holysheep else ChatHolySheep(**self.settings)
            )

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """Serialize, leaving out defaults that are functions.

        Returns:
            The constructor form; custom ``fallback_on`` predicates and
            ``response_checks`` serialize as "not implemented".
        """
        data = super().to_json()
        if data["type"] != "constructor":  # pragma: no cover (always serializable)
            return data
        kwargs = data["kwargs"]
        # Connection settings holding credentials went to the top level as
        # secret references (``_collect_settings`` moves them back on load).
        if moved := {"base_url", "default_headers", "default_query"} & set(kwargs):
            kwargs["settings"] = {
                k: v for k, v in kwargs.get("settings", {}).items() if k not in moved
            }
        if self.fallback_on == (is_fallback_error,):
            kwargs.pop("fallback_on", None)
        policy = self.circuit_breaker
        if policy is not None and policy.clock is time.monotonic:
            kwargs["circuit_breaker"] = {
                "failure_threshold": policy.failure_threshold,
                "cooldown": policy.cooldown,
                "max_cooldown": policy.max_cooldown,
            }
        return data

    # ------------------------------------------------ BaseChatModel overrides
    @property
    def _llm_type(self) -> str:
        return "holysheep-fallback"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        """The members' identities, in order (used as the cache key)."""
        return {
            "models": [
                {"name": m.name, **m.model._identifying_params}  # noqa: SLF001
                for m in self._members()
            ],
        }

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        """The LLM-cache key, without a call's time bounds (they change no answer)."""
        kwargs.pop("timeout", None)
        kwargs.pop("total_timeout", None)
        return super()._get_llm_string(stop=stop, **kwargs)

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = self._members()[0].model._get_ls_params(stop=stop, **kwargs)  # noqa: SLF001
        params["ls_model_type"] = "chat"
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        """What every member's profile has in common (see ``intersect_profiles``).

        Members given as ids count with their own model's profile.
        """
        return intersect_profiles(
            model_profile(m) if isinstance(m, str) else m.profile for m in self.models
        )

    @property
    def model_names(self) -> list[str]:
        """The members' model ids, in the order they are tried."""
        return [m.name for m in self._members()]

    # ---- token counting: offline, whatever the members are
    # Every ChatHolySheep member (the primary included) gives the same offline
    # estimate, so the chain gives it too, without asking any member: another
    # provider's model may count by downloading a tokenizer or calling its API.

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool]
        | None = None,
    ) -> int:
        """Estimate the prompt's tokens offline, as every ``ChatHolySheep`` does.

        The same estimate as the primary's (and every ``ChatHolySheep``
        member's); no member is asked, so nothing is downloaded or sent.

        Args:
            messages: The conversation.
            tools: Tools bound to the call (counted by their JSON size).

        Returns:
            The approximate number of input tokens.
        """
        return estimate_message_tokens(messages, tools)

    def get_num_tokens(self, text: str) -> int:
        """Estimate the tokens in ``text`` offline (as ``ChatHolySheep`` does).

        With ``custom_get_token_ids`` set on the chain, the number of its ids.

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
            NotImplementedError: At once, without ``custom_get_token_ids``.
        """
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise no_token_ids(type(self).__name__)

    # ---- resources
    def close(self) -> None:
        """Close the connection pools of the ``ChatHolySheep`` members.

        Members built from ids share one pool, closed once; a closed pool is
        rebuilt on the next call. Other providers' members are left to their
        owner. Usually unnecessary: pools live for the process.
        """
        for member in self._members():
            if isinstance(member.model, ChatHolySheep):
                member.model.close()

    async def aclose(self) -> None:
        """Close this event loop's pools of the ``ChatHolySheep`` members.

        As :meth:`close`, for async pools (also closed when the loop shuts
        down, e.g. when ``asyncio.run`` returns).
        """
        for member in self._members():
            if isinstance(member.model, ChatHolySheep):
                await member.model.aclose()

    def circuit_states(self) -> dict[str, CircuitSnapshot]:
        """Each member's breaker state (empty with breakers off).

        Returns:
            Snapshots keyed by model id.
        """
        return {m.name: m.breaker.snapshot() for m in self._members() if m.breaker}

    # ---- tools and structured output
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools to every member, each through its own ``bind_tools``.

        Each member is checked now. A member that cannot take the tools or an
        option (``strict=True`` on a model without strict schemas, a forced
        ``tool_choice``) is a failed attempt when called, and the next member is
        asked; ``parallel_tool_calls`` is left out for members without it (one
        warning). If no member can take them, this raises now.

        Args:
            tools: Tools in any form ``bind_tools`` accepts.
            tool_choice: As for the members' ``bind_tools``.
            **kwargs: Other options for the members' ``bind_tools``
                (``strict``, ``parallel_tool_calls``, ``response_format``...).

        Returns:
            The chain with the tools bound (``kwargs["tools"]`` holds them in
            OpenAI format).

        Raises:
            HolySheepInputError: No member can take the tools and options.
            NotImplementedError: A member has no tool calling at all.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        options = dict(kwargs)
        if tool_choice is not None:
            options["tool_choice"] = tool_choice
        refused: list[str] = []
        for member in self._members():
            try:
                member.model.bind_tools(formatted, **options)
            except NotImplementedError as error:
                msg = f"Fallback member {member.name!r} does not support tool calling."
                raise NotImplementedError(msg) from error
            except HolySheepUnsupportedInputError as error:
                refused.append(f"{member.name}: {error}")
        _check_some_member_can(refused, len(self._members()), "these tools and options")
        return self.bind(tools=formatted, **{TOOL_OPTIONS: options})

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output from every member, each with its own method.

        Args:
            schema: As for the members' ``with_structured_output``.
            include_raw: Return ``{"raw", "parsed", "parsing_error"}``.
            **kwargs: Passed to each member (``method``, ``strict``...).

        Returns:
            A runnable that falls over like the chain (streams are not
            committed early: the whole answer is parsed). An answer that
            cannot be parsed falls over too (``fallback_on_parse_error``),
            after one re-prompt with ``reprompt_on_parse_error``; with
            ``include_raw=True`` and no member parsed, the last answer is
            returned with the group of every attempt as ``parsing_error``. A
            member that cannot give this output (``method="json_schema"`` on a
            model without it) is a failed attempt when called.

        Raises:
            HolySheepInputError: No member can give this structured output.
        """
        runnables: list[Any] = []
        refused: list[str] = []
        for member in self._members():
            try:
                runnables.append(
                    member.model.with_structured_output(
                        schema,  # type: ignore[arg-type]
                        include_raw=True,
                        **kwargs,
                    )
                )
            except HolySheepUnsupportedInputError as error:
                refused.append(f"{member.name}: {error}")
                runnables.append(RunnableLambda(partial(_refuse, error)))
        _check_some_member_can(refused, len(runnables), "this structured output")
        return _StructuredFallback(
            chain=self, runnables=runnables, include_raw=include_raw
        )

    # ----------------------------------------------------------- the calls
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        walk = self._walk(kwargs)
        for member in walk:
            with walk.attempt():
                model, call_kwargs = prepare(member.model, kwargs)
                call_kwargs = walk.bounded(member, call_kwargs)
                result = model._generate_with_cache(messages, stop=stop, **call_kwargs)  # noqa: SLF001
            if walk.answered and walk.accepts(result):
                return _annotate(result, member, walk.succeeded())
        raise walk.exhausted()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        walk = self._walk(kwargs)
        async for member in walk:
            with walk.attempt():
                model, call_kwargs = prepare(member.model, kwargs)
                call_kwargs = walk.bounded(member, call_kwargs)
                result = await model._agenerate_with_cache(  # noqa: SLF001
                    messages, stop=stop, **call_kwargs
                )
            if walk.answered and walk.accepts(result):
                return _annotate(result, member, walk.succeeded())
        raise walk.exhausted()

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        walk = self._walk(kwargs)
        for member in walk:
            with walk.attempt():  # a member that cannot take the call fails here
                model, call_kwargs = prepare(member.model, kwargs)
                call_kwargs = walk.bounded(member, call_kwargs)
            if not walk.answered:
                continue
            chunks = open_stream(model, messages, stop, call_kwargs)
            try:
                with walk.attempt():
                    buffered = peek(chunks)
                if not walk.answered:
                    continue
                # Committed: from here on this member's output is the answer.
                annotate_chunk(buffered[0] if buffered else None, walk.succeeded())
                named = Named()
                with walk.committed():
                    yield from map(named, buffered)
                    yield from map(named, chunks)
            finally:
                chunks.close()
            if not named.seen:
                yield name_chunk(member.name)
            return
        raise walk.exhausted()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        walk = self._walk(kwargs)
        async for member in walk:
            with walk.attempt():  # a member that cannot take the call fails here
                model, call_kwargs = prepare(member.model, kwargs)
                call_kwargs = walk.bounded(member, call_kwargs)
            if not walk.answered:
                continue
            chunks = aopen_stream(model, messages, stop, call_kwargs)
            try:
                with walk.attempt():
                    buffered = await apeek(chunks)
                if not walk.answered:
                    continue
                annotate_chunk(buffered[0] if buffered else None, walk.succeeded())
                named = Named()
                with walk.committed():
                    for chunk in buffered:
                        yield named(chunk)
                    async for chunk in chunks:
                        yield named(chunk)
            finally:
                await chunks.aclose()
            if not named.seen:
                yield name_chunk(member.name)
            return
        raise walk.exhausted()

    # ------------------------------------------------------------ internals
    def _members(self) -> list[Member]:
        """Build the members on first use (ids copy the template; pools shared)."""
        built = self._built
        if built is not None:
            return built
        with self._build_lock:
            if self._built is None:
                self._built = [self._build(m) for m in self.models]
            return self._built

    def _build(self, spec: BaseChatModel | str) -> Member:
        """One member; a ``ChatHolySheep`` one is a copy that adapts its requests.

        The copy runs with SDK retries off, carries its own model's profile
        (an id copies the template's settings, not its profile) and leaves out
        what its model can do without, warning once (``Member.drop_setting``).
        The user's own models are not changed.
        """
        model: BaseChatModel
        if isinstance(spec, str):
            if self._template is None:  # pragma: no cover (set by the validator)
                msg = "no template to build model ids from"
                raise RuntimeError(msg)
            model = self._template.model_copy(
                update={
                    "model_name": spec,
                    "max_retries": 0,
                    "profile": model_profile(spec),
                }
            )
        elif isinstance(spec, ChatHolySheep):
            model = spec.model_copy(update={"max_retries": 0})
        else:
            model = spec
        name = model_name(model)
        breaker = (
            get_circuit_breaker(name, scope(model), self.circuit_breaker)
            if self.circuit_breaker is not None
            else None
        )
        member = Member(
            name=name,
            model=model,
            breaker=breaker,
            takes_total_timeout=isinstance(model, ChatHolySheep),
        )
        if isinstance(model, ChatHolySheep):
            model._on_drop = member.drop_setting  # noqa: SLF001
        return member

    def _walk(self, kwargs: dict[str, Any] | None = None) -> Walk:
        """A walk for one call; a per-call ``total_timeout`` is taken out of it."""
        total = per_call_seconds(
            (kwargs or {}).pop("total_timeout", None), "total_timeout"
        )
        if total is None:
            total = self.total_timeout
        deadline = None if total is None else Deadline(total)
        return Walk(settings=self, members=self._members(), deadline=deadline)


def _check_some_member_can(refused: list[str], members: int, what: str) -> None:
    """Raise when every member refused ``what``: no call could ever succeed."""
    if len(refused) == members:
        raise input_error(
            f"No member of the fallback chain can take {what}: " + "; ".join(refused)
        )


def _refuse(error: Exception, _input: object) -> NoReturn:
    """A member's stand-in runnable: its refusal, raised inside the attempt.

    A fresh copy each time, so concurrent calls never share a traceback.
    """
    raise copy.copy(error)


def _annotate(
    result: ChatResult, member: Member, attempts: list[dict[str, Any]]
) -> ChatResult:
    """Name the serving model and the failed attempts on every generation."""
    for generation in result.generations:
        metadata = generation.message.response_metadata
        metadata.setdefault("model_name", member.name)
        metadata["fallback_attempts"] = attempts
    return result


class _StructuredFallback(RunnableSerializable[Any, Any]):
    """``with_structured_output`` of a chain: each member's own, tried in order.

    Every member's runnable returns ``{"raw", "parsed", "parsing_error"}``, so
    an unparsable answer is seen, not raised: :class:`_Answers` decides.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    chain: ChatHolySheepFallback
    runnables: list[Any]
    include_raw: bool = False

    def invoke(
        self,
        input: Any,  # noqa: A002 (the Runnable signature)
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(
        self,
        input: Any,  # noqa: A002 (the Runnable signature)
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def _invoke(
        self,
        input_: Any,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        walk = self.chain._walk()  # noqa: SLF001
        answers = _Answers(self, input_)
        for _ in walk:
            runnable = self.runnables[walk.index]
            child = patch_config(config, callbacks=run_manager.get_child())
            with walk.attempt():
                output = runnable.invoke(answers.input_for(walk), child, **kwargs)
            if walk.answered and answers.settled(walk, output):
                return answers.result
        return answers.exhausted(walk)

    async def _ainvoke(
        self,
        input_: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        walk = self.chain._walk()  # noqa: SLF001
        answers = _Answers(self, input_)
        async for _ in walk:
            runnable = self.runnables[walk.index]
            child = patch_config(config, callbacks=run_manager.get_child())
            with walk.attempt():
                output = await runnable.ainvoke(
                    answers.input_for(walk), child, **kwargs
                )
            if walk.answered and answers.settled(walk, output):
                return answers.result
        return answers.exhausted(walk)


@dataclass(slots=True)
class _Answers:
    """One structured call's answers: what each member is asked, what is returned."""

    owner: _StructuredFallback
    input: Any
    reprompts: dict[int, list[BaseMessage]] = field(default_factory=dict)
    """The re-prompt conversation per member position (asked once)."""
    last: dict[str, Any] | None = None
    """The last unparsable answer (``include_raw`` returns it at the end)."""
    result: Any = None

    def input_for(self, walk: Walk) -> Any:
        """The input for the member being tried (its re-prompt, if one is due)."""
        return self.reprompts.get(walk.index, self.input)

    def settled(self, walk: Walk, output: Any) -> bool:
        """Whether ``output`` ends the call (then ``result`` holds the value).

        Raises:
            Exception: A parsing error that does not fall over (a refusal, or
                any with ``fallback_on_parse_error=False``), unless
                ``include_raw`` (then it is returned).
        """
        parsed, error = _parsed(output)
        if error is None:
            member, attempts = walk.current, walk.succeeded()
            raw = output.get("raw") if isinstance(output, dict) else None
            if member is not None and isinstance(raw, BaseMessage):
                raw.response_metadata.setdefault("model_name", member.name)
                raw.response_metadata["fallback_attempts"] = attempts
            self.result = output if self.owner.include_raw else parsed
            return True
        chain = self.owner.chain
        if not (chain.fallback_on_parse_error and is_parse_error(error)):
            walk.note_earlier_attempts(error)
            if not self.owner.include_raw:
                raise error
            self.result = output
            return True
        reprompt = chain.reprompt_on_parse_error and walk.index not in self.reprompts
        if reprompt:
            messages = chain._convert_input(self.input).to_messages()  # noqa: SLF001
            self.reprompts[walk.index] = reprompt_messages(messages, error)
        self.last = output
        walk.unparsable(error, reprompt=reprompt)
        return False

    def exhausted(self, walk: Walk) -> Any:
        """No member answered in the schema: the group of every attempt.

        Raises:
            HolySheepFallbackError: Unless ``include_raw`` and some member
                answered (then the last answer is returned with the group as
                its ``parsing_error``).
        """
        group = walk.exhausted()
        if self.owner.include_raw and self.last is not None:
            return {**self.last, "parsed": None, "parsing_error": group}
        raise group


def _parsed(output: Any) -> tuple[Any, Exception | None]:
    """``(parsed, parsing_error)`` of a member's ``include_raw`` output.

    A ``parsed`` of ``None`` with no error (a foreign member's parser that
    found nothing) is an unparsable answer too: never a silent ``None``.
    """
    if not isinstance(output, dict) or "parsing_error" not in output:
        return output, None
    parsed, error = output.get("parsed"), output.get("parsing_error")
    if error is None and parsed is None:
        from langchain_holysheep.errors import (  # noqa: PLC0415
            HolySheepStructuredOutputError,
        )

        error = HolySheepStructuredOutputError(
            "The model's answer held no structured output (parsed is None).",
            llm_output=getattr(output.get("raw"), "text", None),
        )
    return parsed, error
