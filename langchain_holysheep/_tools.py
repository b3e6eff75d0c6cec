"""Tools, ``tool_choice`` and ``response_format`` in the wire form, checked per model.

Pure functions (no client, no I/O, no model instance): each takes the model id
the request will name and checks it against the capability table
(:mod:`langchain_holysheep._profiles`). Known models get a clear
``HolySheepUnsupportedInputError`` (a ``HolySheepInputError`` naming the model)
before any request for what they cannot do; unknown models get the request as
asked.

``strict`` policy: ``strict=True`` on a model known not to honour it raises (a
guarantee is never silently dropped); ``strict=False`` is sent only where
``strict`` is understood; a strict schema is closed
(``additionalProperties: false`` on every object), as strict mode requires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_holysheep._convert import input_error, unsupported_error
from langchain_holysheep._profiles import get_capabilities

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_core.tools import BaseTool

__all__ = [
    "closed_schema",
    "format_tool",
    "json_schema_of",
    "normalize_tool_choice",
    "response_format_for",
    "strict_compatible",
    "tool_kwargs",
]


def tool_kwargs(
    tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
    model: object,
    *,
    tool_choice: dict[str, Any] | str | bool | None = None,
    strict: bool | None = None,
    parallel_tool_calls: bool | None = None,
    response_format: dict[str, Any] | type | None = None,
    adapt: bool = False,
) -> dict[str, Any]:
    """The request parameters ``bind_tools`` binds, checked for ``model``.

    Args:
        tools: The tools, in any form LangChain converts.
        model: The model id the request will name.
        tool_choice: As ``ChatHolySheep.bind_tools`` takes it.
        strict: As ``ChatHolySheep.bind_tools`` takes it.
        parallel_tool_calls: As ``ChatHolySheep.bind_tools`` takes it.
        response_format: As ``ChatHolySheep.bind_tools`` takes it.
        adapt: Bind ``parallel_tool_calls`` even where the model does not
            take it (a fallback member: the request drops it, with a warning,
            see :func:`~langchain_holysheep._convert.build_request`).

    Returns:
        ``tool_choice``, ``parallel_tool_calls``, ``response_format`` and
        ``tools``, each only when there is something to send.

    Raises:
        HolySheepInputError: For a tool that cannot be converted or a bad
            ``tool_choice``.
        HolySheepUnsupportedInputError: For a form the model does not support.
    """
    capabilities = get_capabilities(model)
    if capabilities is not None and tools and not capabilities.tool_calling:
        raise unsupported_error(
            f"Model {model!r} does not support tool calling.",
            model=model,
            setting="tools",
        )
    formatted = [format_tool(t, model, strict=strict) for t in tools]
    names = [t["function"]["name"] for t in formatted]
    bound: dict[str, Any] = {}
    choice = normalize_tool_choice(tool_choice, names)
    if choice is not None:
        if (
            capabilities is not None
            and not capabilities.tool_choice
            and choice not in {"auto", "none"}
        ):
            raise unsupported_error(
                f"Model {model!r} cannot be forced to call a tool "
                f"(tool_choice={tool_choice!r}). Leave tool_choice unset.",
                model=model,
                setting="tool_choice",
            )
        bound["tool_choice"] = choice
    if parallel_tool_calls is not None:
        if (
            not adapt
            and capabilities is not None
            and not capabilities.parallel_tool_calls
        ):
            raise unsupported_error(
                f"Model {model!r} does not accept parallel_tool_calls; leave "
                "it unset (tool results can still be handled one by one).",
                model=model,
                setting="parallel_tool_calls",
            )
        bound["parallel_tool_calls"] = parallel_tool_calls
    if response_format is not None:
        bound["response_format"] = response_format_for(response_format, model)
    if formatted:
        bound["tools"] = formatted
    return bound


def format_tool(
    tool: dict[str, Any] | type | Callable[..., Any] | BaseTool,
    model: object,
    *,
    strict: bool | None = None,
) -> dict[str, Any]:
    """One tool as a chat-completions function tool, ``strict`` applied.

    Args:
        tool: A ``BaseTool``, a function with a docstring, a pydantic class, a
            TypedDict or an OpenAI/JSON-schema function dict.
        model: The model id the request will name.
        strict: ``True``/``False`` to set ``strict``; ``None`` keeps what a
            dict tool says (and sends nothing otherwise).

    Returns:
        ``{"type": "function", "function": {...}}``.

    Raises:
        HolySheepInputError: The tool cannot be converted or is a provider
            built-in.
        HolySheepUnsupportedInputError: It asks for ``strict`` where the model
            does not honour it.
    """
    from langchain_core.utils.function_calling import (  # noqa: PLC0415
        convert_to_openai_tool,
    )

    try:
        spec = convert_to_openai_tool(tool, strict=strict)
    except Exception as error:  # core raises several types
        raise input_error(
            f"Cannot use {tool!r} as a tool: {error}. Pass a BaseTool, a "
            "function with a docstring, a pydantic class, a TypedDict or an "
            "OpenAI function schema with a name."
        ) from error
    if spec.get("type") != "function":
        raise input_error(
            f"Tool {tool!r} is a provider built-in ({spec.get('type')!r}); "
            "only function tools work through the gateway."
        )
    function = spec.get("function")
    if function is None:  # Responses-API style: the function fields inline
        function = {k: v for k, v in spec.items() if k != "type"}
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise input_error(f"Tool {tool!r} has no function name.")
    function = dict(function)
    given = function.pop("strict", None)
    wanted = given if strict is None else strict
    capabilities = get_capabilities(model)
    supported = capabilities is None or capabilities.strict_tools
    if wanted is True and not supported:
        raise unsupported_error(
            f"Model {model!r} does not support strict tool schemas; remove "
            "strict=True (tool arguments are still validated by LangChain).",
            model=model,
            setting="strict",
        )
    if isinstance(wanted, bool) and supported:
        function["strict"] = wanted
        if wanted and "parameters" in function:
            function["parameters"] = closed_schema(function["parameters"])
    return {"type": "function", "function": function}


def normalize_tool_choice(
    choice: dict[str, Any] | str | bool | None, names: list[str]
) -> dict[str, Any] | str | None:
    """Normalize ``tool_choice`` to the wire form, or raise on a bad one.

    Args:
        choice: ``"auto"``, ``"none"``, ``"required"``, ``"any"``, a tool name,
            ``True`` (the single tool), an OpenAI-style dict, or ``None``/``False``.
        names: The names of the bound tools.

    Returns:
        The wire form, or ``None`` when nothing is to be sent. A bound tool's
        name wins over a keyword of the same spelling.

    Raises:
        HolySheepInputError: The choice names no bound tool or is malformed.
    """
    if choice is None or choice is False:
        return None
    if not names:
        raise input_error(f"tool_choice={choice!r} needs at least one tool.")
    if choice is True:
        if len(names) != 1:
            raise input_error(
                f"tool_choice=True names no tool among {names}; pass a tool "
                "name, or 'required' to force any of them."
            )
        choice = names[0]
    if isinstance(choice, dict):
        choice = _named_tool_choice(choice, names)
    if not isinstance(choice, str):
        raise input_error(
            f"tool_choice must be a string, a bool or a dict, not {choice!r}."
        )
    if choice in names:
        return {"type": "function", "function": {"name": choice}}
    if choice in {"auto", "none", "required"}:
        return choice
    if choice == "any":  # LangChain's name for "required"
        return "required"
    raise input_error(
        f"tool_choice={choice!r} is neither 'auto', 'none', 'required', "
        f"'any' nor a bound tool name ({names})."
    )


def _named_tool_choice(choice: dict[str, Any], names: list[str]) -> str:
    """The tool name of an OpenAI-style ``tool_choice`` dict."""
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if choice.get("type") != "function" or not isinstance(name, str):
        raise input_error(
            f"tool_choice={choice!r} is not of the form "
            "{'type': 'function', 'function': {'name': ...}}."
        )
    if name not in names:
        raise input_error(f"tool_choice names {name!r}, not one of {names}.")
    return name


def response_format_for(
    schema: dict[str, Any] | type, model: object, *, strict: bool | None = None
) -> dict[str, Any]:
    """A ``json_schema``/``json_object`` response format, checked for ``model``.

    Args:
        schema: A ``response_format`` dict (``json_schema``, ``json_object`` or
            ``text``), a ``{"name", "schema"}`` dict, a pydantic class, a
            TypedDict or a JSON schema with a title.
        model: The model id the request will name.
        strict: ``True``/``False`` to set ``strict``; ``None`` keeps what the
            schema says, else sends ``strict`` where the model honours it and
            the schema allows it (see :func:`strict_compatible`).

    Returns:
        The ``response_format`` to send.

    Raises:
        HolySheepInputError: The schema cannot be converted.
        HolySheepUnsupportedInputError: The model does not support this
            format or ``strict``.
    """
    capabilities = get_capabilities(model)
    if isinstance(schema, dict) and schema.get("type") in {"json_object", "text"}:
        if (
            schema["type"] == "json_object"
            and capabilities is not None
            and "json_mode" not in capabilities.structured_output_methods
        ):
            raise unsupported_error(
                f"Model {model!r} does not support JSON mode.",
                model=model,
                setting="response_format",
            )
        return dict(schema)
    if capabilities is not None and (
        "json_schema" not in capabilities.structured_output_methods
    ):
        raise unsupported_error(
            f"Model {model!r} does not accept a JSON-schema response_format; "
            "use method='function_calling' (or leave method unset).",
            model=model,
            setting="response_format",
        )
    json_schema = json_schema_of(schema)
    given = json_schema.pop("strict", None)
    wanted = given if strict is None else strict
    supported = capabilities is None or capabilities.strict_json_schema
    if wanted is True and not supported:
        raise unsupported_error(
            f"Model {model!r} does not support strict JSON schemas; remove "
            "strict=True.",
            model=model,
            setting="strict",
        )
    if wanted is None and capabilities is not None and supported:
        wanted = strict_compatible(json_schema.get("schema"))
    if isinstance(wanted, bool) and supported:
        json_schema["strict"] = wanted
        if wanted:
            json_schema["schema"] = closed_schema(json_schema["schema"])
    return {"type": "json_schema", "json_schema": json_schema}


def json_schema_of(schema: dict[str, Any] | type) -> dict[str, Any]:
    """The ``json_schema`` member of a response format (``strict`` as given).

    Args:
        schema: A ``json_schema`` response format, a ``{"name", "schema"}``
            dict, a pydantic class, a TypedDict or a JSON schema with a title.

    Returns:
        ``{"name", "description"?, "schema", "strict"?}`` (a new dict).

    Raises:
        HolySheepInputError: The schema cannot be converted.
    """
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
        raise input_error(
            f"Cannot use {schema!r} as an output schema: {error}. Pass a "
            "pydantic class, a TypedDict or a JSON schema with a title."
        ) from error
    json_schema: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        json_schema["description"] = function["description"]
    json_schema["schema"] = function.get("parameters") or {"type": "object"}
    return json_schema


def strict_compatible(schema: object) -> bool:
    """Whether strict mode accepts ``schema`` (every property required).

    Args:
        schema: A JSON schema (or any part of one).

    Returns:
        ``False`` if some object anywhere in it has an optional property.
    """
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    properties = schema.get("properties")
    if isinstance(properties, dict) and set(properties) - set(
        schema.get("required") or ()
    ):
        return False
    return all(strict_compatible(value) for value in schema.values())


def closed_schema(schema: Any) -> Any:
    """Add ``additionalProperties: false`` to every object (strict needs it).

    Args:
        schema: A JSON schema (or any part of one); it is not modified.

    Returns:
        A closed copy; an object that sets ``additionalProperties`` keeps it.
    """
    if isinstance(schema, list):
        return [closed_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: closed_schema(value) for key, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed
