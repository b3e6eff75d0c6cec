"""Structured output: the method per model, the runnable, and its checks.

:func:`structured_output` builds what ``ChatHolySheep.with_structured_output``
returns: the model bound with a ``response_format`` or a forced tool call,
then a check that passes messages through and raises on a refusal or on
unusable output (never a silent ``None``), then LangChain's parser. The checks
(:func:`raise_on_refusal`, :func:`check_structured_message`) are pure functions
of a message. No I/O happens here: the bound model does it when the runnable
runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from langchain_holysheep._convert import input_error, unsupported_error
from langchain_holysheep._profiles import (
    default_structured_output_method,
    get_capabilities,
)
from langchain_holysheep._tools import format_tool, response_format_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence

    from langchain_core.language_models import BaseChatModel
    from langchain_core.language_models.base import LanguageModelInput
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable
    from pydantic import BaseModel

    from langchain_holysheep._profiles import StructuredMethod
    from langchain_holysheep.errors import HolySheepStructuredOutputError

__all__ = [
    "check_structured_message",
    "choose_method",
    "raise_on_refusal",
    "reprompt_messages",
    "structured_output",
    "structured_output_check",
]

_METHODS: Final = frozenset({"json_schema", "function_calling", "json_mode"})


def choose_method(
    model: object, method: str | None, strict: bool | None
) -> StructuredMethod:
    """The structured-output method for ``model``, checked before any request.

    Args:
        model: The model id the request will name.
        method: The method asked for; ``None`` picks the model's best one.
        strict: The ``strict`` asked for (not allowed with ``json_mode``).

    Returns:
        ``"json_schema"``, ``"function_calling"`` or ``"json_mode"``.

    Raises:
        HolySheepInputError: An unknown method, one the model does not support,
            or ``strict`` with ``json_mode``.
    """
    chosen = method or default_structured_output_method(model)
    if chosen not in _METHODS:
        raise input_error(
            f"Unknown method {method!r}: use 'json_schema', "
            "'function_calling' or 'json_mode' (or leave it unset)."
        )
    capabilities = get_capabilities(model)
    if (
        capabilities is not None
        and chosen not in capabilities.structured_output_methods
    ):
        supported = sorted(capabilities.structured_output_methods)
        raise unsupported_error(
            f"Model {model!r} does not support method={chosen!r}; use one of "
            f"{supported}, or leave method unset to pick the best one.",
            model=model,
            setting="method",
        )
    if strict is not None and chosen == "json_mode":
        raise input_error("strict cannot be used with method='json_mode'.")
    return cast("StructuredMethod", chosen)


def structured_output(
    llm: BaseChatModel,
    model: object,
    schema: dict[str, Any] | type | None,
    *,
    method: str | None,
    include_raw: bool,
    strict: bool | None,
    bind_kwargs: dict[str, Any],
) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
    """The runnable ``with_structured_output`` returns (see its docstring).

    Args:
        llm: The chat model to bind (through its own ``bind_tools``/``bind``).
        model: The model id the request will name (a per-call one wins).
        schema: The output schema (``None`` only with ``json_mode``).
        method: As ``with_structured_output`` takes it.
        include_raw: As ``with_structured_output`` takes it.
        strict: As ``with_structured_output`` takes it.
        bind_kwargs: Other request parameters, bound as-is (added to).

    Returns:
        A runnable taking the model's input.

    Raises:
        HolySheepInputError: Before any request, as ``with_structured_output``.
    """
    from langchain_core.output_parsers import (  # noqa: PLC0415
        JsonOutputKeyToolsParser,
        JsonOutputParser,
        PydanticOutputParser,
        PydanticToolsParser,
    )
    from langchain_core.utils.pydantic import is_basemodel_subclass  # noqa: PLC0415

    chosen = choose_method(model, method, strict)
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"kwargs": {"method": chosen, "strict": strict}, "schema": schema}
    parser: Runnable[Any, Any]
    tool_name = None
    if chosen == "function_calling":
        if schema is None:
            raise input_error("method='function_calling' needs a schema.")
        tool_name = format_tool(schema, model)["function"]["name"]
        capabilities = get_capabilities(model)
        if capabilities is not None and capabilities.parallel_tool_calls:
            bind_kwargs["parallel_tool_calls"] = False
        bound = llm.bind_tools(
            [schema],
            tool_choice=tool_name,
            strict=strict,
            ls_structured_output_format=trace,
            **bind_kwargs,
        )
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
        )
    else:
        if chosen == "json_schema":
            if schema is None:
                raise input_error("method='json_schema' needs a schema.")
            bind_kwargs["response_format"] = response_format_for(
                schema, model, strict=strict
            )
        else:
            bind_kwargs["response_format"] = {"type": "json_object"}
        bound = llm.bind(ls_structured_output_format=trace, **bind_kwargs)
        parser = (
            PydanticOutputParser(pydantic_object=schema)
            if is_pydantic
            else JsonOutputParser()
        )
    checked = structured_output_check(tool_name, parser) | parser
    if not include_raw:
        return bound | checked
    from operator import itemgetter  # noqa: PLC0415

    from langchain_core.runnables import (  # noqa: PLC0415
        RunnableMap,
        RunnablePassthrough,
    )

    parsed = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | checked, parsing_error=lambda _: None
    )
    unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parsed.with_fallbacks(
        [unparsed], exception_key="parsing_error"
    )


def raise_on_refusal(message: BaseMessage) -> None:
    """Raise ``ModelRefusalError`` if the model refused or was filtered.

    Args:
        message: The model's (whole) answer.

    Raises:
        ModelRefusalError: A ``refusal`` was sent, or the finish reason is
            ``content_filter``; it carries the message as ``raw_message``.
    """
    from langchain_core.exceptions import ModelRefusalError  # noqa: PLC0415

    refusal = message.additional_kwargs.get("refusal")
    if refusal:
        msg = f"The model refused: {refusal}"
        raise ModelRefusalError(msg, raw_message=message)
    if message.response_metadata.get("finish_reason") == "content_filter":
        msg = "The answer was stopped by the provider's content filter."
        raise ModelRefusalError(msg, raw_message=message)


def check_structured_message(message: BaseMessage, tool_name: str | None) -> None:
    """Raise unless ``message`` holds the whole structured output.

    The final value is parsed strictly: JSON that a lenient parser would close
    (a stream's partial values) is an error here, never a value.

    Args:
        message: The model's whole answer (a stream's chunks added up).
        tool_name: The forced tool (``function_calling``), or ``None`` when the
            output is the message's JSON text.

    Raises:
        ModelRefusalError: The model refused (see :func:`raise_on_refusal`).
        HolySheepIncompleteOutputError: The answer was cut off at
            ``max_tokens`` (``finish_reason: "length"``), or its JSON (text or
            tool arguments) ends before it is complete.
        HolySheepStructuredOutputError: No call of ``tool_name``, or text or
            arguments that are not valid JSON (an ``OutputParserException``).
    """
    raise_on_refusal(message)
    text = message.text
    if message.response_metadata.get("finish_reason") == "length":
        sent = text or _arguments_of(message, tool_name) or ""
        msg = (
            "The answer was cut off at max_tokens (finish_reason 'length'), so it "
            "is not the whole structured output: raise max_tokens, or ask for "
            f"less. What arrived: {sent[:300]!r}"
        )
        raise _parse_error(msg, sent, incomplete=True)
    if tool_name is None:
        _check_json(text, "The model's answer")
        return
    for piece in getattr(message, "tool_call_chunks", ()):
        # Streamed arguments are parsed leniently (partial JSON is closed),
        # so check the finished argument string strictly.
        if piece.get("name") == tool_name and piece.get("args"):
            _check_json(piece["args"], _called(tool_name), plural=True)
    if any(c["name"] == tool_name for c in getattr(message, "tool_calls", ())):
        return
    for bad in getattr(message, "invalid_tool_calls", ()):
        if bad.get("name") in {tool_name, None}:
            _check_json(bad.get("args") or "", _called(tool_name), plural=True)
            msg = (
                f"The model's call of {tool_name!r} cannot be used "
                f"({bad.get('error')}): {bad.get('args')!r}"
            )
            raise _parse_error(msg, bad.get("args") or "")
    msg = (
        f"The model answered without calling {tool_name!r}, so there is no "
        f"structured output. Its answer: {text[:300]!r}"
    )
    raise _parse_error(msg, text)


def _called(tool_name: str) -> str:
    return f"The model called {tool_name!r} with arguments that"


def _arguments_of(message: BaseMessage, tool_name: str | None) -> str | None:
    """The raw arguments a message sent for ``tool_name`` (cut-off reports)."""
    for piece in getattr(message, "tool_call_chunks", ()):
        if piece.get("name") == tool_name and piece.get("args"):
            return str(piece["args"])
    for bad in getattr(message, "invalid_tool_calls", ()):
        if bad.get("args"):
            return str(bad["args"])
    for call in getattr(message, "tool_calls", ()):
        if call["name"] == tool_name:
            import json  # noqa: PLC0415

            return json.dumps(call["args"])
    return None


def _check_json(text: str, what: str, *, plural: bool = False) -> None:
    """Raise unless ``text`` is one whole JSON value (code fences allowed)."""
    from langchain_core.utils.json import parse_json_markdown  # noqa: PLC0415

    try:
        parse_json_markdown(text, parser=_loads)
    except ValueError as error:
        if _is_cut(text):
            end, its = ("end", "their") if plural else ("ends", "its")
            msg = (
                f"{what} {end} before {its} JSON is complete, so it is not the "
                f"whole structured output: {text[:300]!r} ({error})"
            )
            raise _parse_error(msg, text, incomplete=True) from error
        verb = "are" if plural else "is"
        msg = f"{what} {verb} not valid JSON: {text[:300]!r} ({error})"
        raise _parse_error(msg, text) from error


def _loads(text: str) -> Any:
    """``json.loads`` that, like LangChain's parsers, takes raw newlines in strings."""
    import json  # noqa: PLC0415

    return json.loads(text, strict=False)


_JSON_LITERALS: Final = ("true", "false", "null")


def _is_cut(text: str) -> bool:
    """Whether invalid JSON is the start of valid JSON: it ran out, not wrong.

    The JSON (inside code fences, if any) fails at its very end: an unclosed
    string, or a value, delimiter or literal that is still missing.
    """
    import json  # noqa: PLC0415
    import re  # noqa: PLC0415

    fenced = re.search(r"```(?:json)?(.*)", text, re.DOTALL)
    candidate = (text if fenced is None else fenced.group(1)).strip(" \n\r\t`")
    if not candidate:
        return False  # nothing at all is not a cut-off answer
    try:
        _loads(candidate)
    except json.JSONDecodeError as error:
        if error.msg.startswith("Unterminated string"):
            return True
        rest = candidate[error.pos :]
        return not rest or any(word.startswith(rest) for word in _JSON_LITERALS)
    return False


def _parse_error(
    message: str, llm_output: str, *, incomplete: bool = False
) -> HolySheepStructuredOutputError:
    from langchain_holysheep.errors import (  # noqa: PLC0415
        HolySheepIncompleteOutputError,
        HolySheepStructuredOutputError,
    )

    if incomplete:
        return HolySheepIncompleteOutputError(message, llm_output=llm_output)
    return HolySheepStructuredOutputError(message, llm_output=llm_output)


def reprompt_messages(
    messages: Sequence[BaseMessage], error: BaseException
) -> list[BaseMessage]:
    """The conversation that asks a model again after an unparsable answer.

    The original messages, then a user turn quoting the parse error (which
    quotes the start of the answer): the model's own answer is not replayed,
    so a broken tool call needs no tool result.

    Args:
        messages: The conversation the answer was for.
        error: Why the answer could not be parsed.

    Returns:
        A new list (``messages`` is not changed).
    """
    from langchain_core.messages import HumanMessage  # noqa: PLC0415

    detail = str(error).split("\nFor troubleshooting", 1)[0][:1000]
    ask = (
        f"Your previous answer could not be used as the structured output: "
        f"{detail}\nAnswer again with only the structured output, following the "
        "schema exactly."
    )
    return [*messages, HumanMessage(ask)]


def structured_output_check(
    tool_name: str | None, parser: Runnable[Any, Any]
) -> Runnable[Any, Any]:
    """Pass messages through; raise on a refusal or on unusable output.

    Chunks flow on as they arrive (structured output still streams) until
    a refusal starts, which is collected whole; the whole message is
    checked at the end, so a refusal, a missing tool call or invalid JSON
    is an error, never a silent ``None``.

    Args:
        tool_name: As :func:`check_structured_message` takes it.
        parser: The parser that follows; run once on the whole message, since
            a stream's parser only parses partially.

    Returns:
        A ``RunnableGenerator`` (sync and async).
    """
    from langchain_core.runnables import RunnableGenerator  # noqa: PLC0415

    def transform(messages: Iterator[BaseMessage]) -> Iterator[BaseMessage]:
        whole: Any = None
        for message in messages:
            whole = message if whole is None else whole + message
            if not whole.additional_kwargs.get("refusal"):
                yield message
        if whole is not None:
            check_structured_message(whole, tool_name)
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
            check_structured_message(whole, tool_name)
            await parser.ainvoke(whole)

    return RunnableGenerator(transform, atransform)
