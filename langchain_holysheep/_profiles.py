"""What each model behind the gateway can do: the capability table.

One :class:`Capabilities` row per model family the gateway serves. An id is
looked up exactly first (ids are case-sensitive, as the gateway is); a dated or
suffixed id resolves to its family (:func:`resolve_family`): one date or
version suffix (``-2025-04-14``, ``-20250514``, ``-2411``, ``-001``,
``-latest``, ``-preview``, ``-preview-05-20``) is taken off, and Anthropic's
own spellings (``claude-sonnet-4-5``, ``claude-opus-4-0``) are aliases. Nothing
else is stripped, so ``gpt-4o-mini`` never resolves to ``gpt-4o`` and
``gpt-4.1-mini`` or ``claude-opus-4-1`` (other models) stay unknown. A snapshot
that differs from its family has its own row (``gpt-4o-2024-05-13``).

The table fills langchain-core's ``profile`` (so ``create_agent`` middleware can
read the context window and whether native structured output exists), picks
``ChatHolySheep``'s defaults (the ``with_structured_output`` method, whether
``strict`` may be sent, whether an assistant turn's ``reasoning_content`` is
echoed back or stripped, whether ``cache_control`` hints are kept) and says
what a model cannot take, so the request is refused before it is sent (or, in a
fallback chain, adapted for that member: see ``docs/fallbacks.md``).
:func:`intersect_profiles` gives a fallback chain the profile every member
satisfies.

Unknown models get no row, hence no profile and no restriction: requests are
sent as asked and the gateway has the last word.

``None`` in a row means "not documented": the key is left out of the profile
and nothing is refused on its account. Values marked *assumed* are not
documented for the OpenAI-compatible route through a gateway and should be
confirmed by the live tests (``tests/live``).

Sources (public vendor documentation, as read in 2026):

* ``gpt-4.1``: platform.openai.com/docs/models/gpt-4.1 (1,047,576-token
  context, 32,768 output tokens, text and image input, no audio input, function
  calling, Structured Outputs with ``strict``, no reasoning output);
  platform.openai.com/docs/guides/pdf-files (vision models take PDF ``file``
  parts).
* ``gpt-4o``: platform.openai.com/docs/models/gpt-4o (128,000-token context,
  16,384 output tokens, text and image input, no audio input in Chat
  Completions, function calling, Structured Outputs from ``gpt-4o-2024-08-06``
  on); the PDF guide as above. ``gpt-4o-2024-05-13`` (its own row): 4,096
  output tokens and no ``json_schema`` response format (the Structured Outputs
  announcement, openai.com/index/introducing-structured-outputs-in-the-api:
  strict function calling on every tool-calling model, the ``json_schema``
  response format from ``gpt-4o-2024-08-06`` and ``gpt-4o-mini`` on).
* ``gpt-4o-mini``: platform.openai.com/docs/models/gpt-4o-mini (128,000-token
  context, 16,384 output tokens, text and image input, function calling,
  Structured Outputs); the PDF guide as above.
* ``claude-sonnet-4.5``: docs.anthropic.com "Models overview" (200K context,
  64K output, text and image input, no audio) and "OpenAI SDK compatibility"
  (``tool_choice`` and ``parallel_tool_calls`` supported; ``response_format``
  and the ``strict`` tool flag are ignored, so neither JSON schema nor JSON mode
  nor strict tools are offered; extended thinking is not returned as
  ``reasoning_content``; ``file`` parts are not documented there, so ``None``)
  and "Migrating to Claude 4.5" (``temperature`` and ``top_p`` may not both be
  set: the API answers 400).
* ``claude-opus-4``: docs.anthropic.com "Models overview" (200K context, 32K
  output, text and image input) and "OpenAI SDK compatibility" as above. The
  one-sampling-parameter rule is documented for the 4.5 models, not for Opus 4,
  so both are sent as asked.
* ``cache_control`` (both Claude rows): Anthropic's prompt caching marks
  content blocks with ``cache_control`` (docs.anthropic.com "Prompt caching");
  OpenAI-shaped gateways take it on text and image parts for Claude models
  only (openrouter.ai/docs/features/prompt-caching). *Assumed* for HolySheep.
  Every other known model gets the hints stripped (OpenAI, Google, Mistral and
  DeepSeek document no such field); an unknown id keeps them only if it starts
  with ``claude``.
* ``gemini-2.5-flash``: ai.google.dev/gemini-api/docs/models (1,048,576 input,
  65,536 output tokens, thinking; text, image, audio and video input) and
  ".../docs/openai" (function calling, ``tool_choice``, ``response_format`` JSON
  schema, ``reasoning_effort`` none/low/medium/high, ``input_audio`` parts;
  ``parallel_tool_calls``, ``strict`` and ``file`` parts are not documented, so
  the first two are not sent and files are ``None``; streamed tool-call deltas
  may lack ``index``, which the stream converter repairs) and
  ".../docs/thought-signatures" (a tool call may carry
  ``extra_content.google.thought_signature``, to be sent back with that call on
  the next turn: recommended for 2.5, required by Gemini 3 function calling; so
  every Gemini row keeps them, and an unknown id keeps them only if it starts
  with ``gemini``).
* ``gemini-2.5-pro``: the same two pages (1,048,576 input, 65,536 output
  tokens; thinking cannot be turned off, so ``reasoning_effort`` takes
  low/medium/high but not ``none``).
* ``gemini-2.0-flash``: the same two pages (1,048,576 input, 8,192 output
  tokens, no thinking, so no reasoning output and no ``reasoning_effort``).
* ``mistral-small-2603``: docs.mistral.ai "Function calling" (``tool_choice``
  ``auto``/``none``/``any``/``required``/named, ``parallel_tool_calls``) and
  "Custom structured outputs" (``json_schema`` with ``strict``, JSON mode);
  vision as in the Mistral Small 3.1+ line; tool call ids must be 9 letters or
  digits (the API answers 400 to others, e.g. another model's ``call_…`` ids).
  The context window is *assumed* (128K, the conservative figure of the Small
  line); the output limit, audio and file input and reasoning output are not
  documented and are left out.
* ``mistral-large``: the same Mistral pages for tools and structured output.
  The family spans Mistral Large 2.1 (``mistral-large-2411``, 128K, text only)
  and Mistral Large 3 (``mistral-large-2512``, larger context, images), and the
  gateway's ``mistral-large`` does not say which it serves: the context is the
  *assumed* smaller 128K and image input is ``None`` (neither refused nor
  promised).
* ``deepseek-v3.2`` (the thinking mode): api-docs.deepseek.com "Models &
  Pricing" (128K context, 64K output in thinking mode), "Function Calling"
  (``tool_choice``; ``strict`` only on the beta endpoint), "JSON Output"
  (``json_object`` only: the API rejects ``json_schema``), "Thinking Mode"
  (``reasoning_content`` must be sent back on assistant turns inside a
  tool-calling turn). ``parallel_tool_calls`` is not a documented parameter.
  The API takes text only (no image, audio or file parts).
* ``deepseek-chat`` (DeepSeek V3.2's non-thinking mode): the same pages (128K
  context, 8K output at most, no reasoning output, text only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from langchain_core.language_models.model_profile import ModelProfile

__all__ = [
    "MODEL_ALIASES",
    "MODEL_CAPABILITIES",
    "Capabilities",
    "StructuredMethod",
    "default_structured_output_method",
    "get_capabilities",
    "intersect_profiles",
    "keeps_cache_control",
    "keeps_thought_signatures",
    "model_profile",
    "resolve_family",
]

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
"""The ways ``with_structured_output`` can steer a model."""

_PART_INPUTS: Final = (
    ("image_url", "image_inputs"),
    ("input_audio", "audio_inputs"),
    ("file", "file_inputs"),
)
"""Wire content-part types and the capability that allows each."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What one model supports through the gateway's OpenAI-compatible API.

    ``None`` means "not documented": left out of the profile, never guessed,
    and never a reason to refuse a request.
    """

    max_input_tokens: int | None
    """Context window in tokens."""
    max_output_tokens: int | None
    """Most tokens one answer can have."""
    image_inputs: bool | None
    """Whether image content parts (``image_url``) are accepted."""
    tool_calling: bool
    """Whether ``tools`` are accepted."""
    tool_choice: bool
    """Whether ``tool_choice`` can force a tool (``"required"`` or a name)."""
    parallel_tool_calls: bool
    """Whether the ``parallel_tool_calls`` parameter is accepted."""
    strict_tools: bool
    """Whether ``strict: true`` on a function definition is honoured."""
    structured_output_methods: frozenset[StructuredMethod]
    """The ``with_structured_output`` methods that work."""
    strict_json_schema: bool
    """Whether ``response_format.json_schema.strict`` is honoured."""
    reasoning_output: bool | None
    """Whether reasoning text comes back (``reasoning_content``)."""
    audio_inputs: bool | None = None
    """Whether ``input_audio`` content parts are accepted."""
    file_inputs: bool | None = None
    """Whether ``file`` content parts (PDF documents) are accepted."""
    reasoning_effort_levels: tuple[str, ...] = ()
    """Accepted ``reasoning_effort`` values (empty: not configurable)."""
    echo_reasoning: bool = False
    """Send an assistant turn's ``reasoning_content`` back (else strip it)."""
    one_sampling_parameter: bool = False
    """``temperature`` and ``top_p`` cannot be sent together (a 400 otherwise)."""
    short_tool_call_ids: bool = False
    """Tool call ids must be 9 letters or digits (other ids get a 400)."""
    cache_control: bool = False
    """Whether ``cache_control`` prompt-caching hints are kept (else stripped)."""
    thought_signatures: bool = False
    """Tool calls carry thought signatures to send back on the next turn
    (Gemini: ``extra_content.google.thought_signature``); stripped for others."""
    refused_parts: frozenset[str] = field(init=False, default=frozenset())
    """The wire content-part types the model is documented not to take
    (derived from the input flags; empty for most models)."""

    def __post_init__(self) -> None:
        """Derive :attr:`refused_parts` once, so a request checks a set."""
        refused = frozenset(
            part for part, flag in _PART_INPUTS if getattr(self, flag) is False
        )
        object.__setattr__(self, "refused_parts", refused)

    @property
    def default_structured_output_method(self) -> StructuredMethod:
        """``json_schema`` where supported, else ``function_calling``."""
        if "json_schema" in self.structured_output_methods:
            return "json_schema"
        return "function_calling"

    def to_profile(self) -> ModelProfile:
        """Build langchain-core's ``ModelProfile`` (documented keys only).

        Returns:
            The profile; keys whose value is not documented are absent.
        """
        profile: ModelProfile = {
            "text_inputs": True,
            "text_outputs": True,
            "tool_calling": self.tool_calling,
            "tool_choice": self.tool_choice,
            # Deltas are aggregated by index, or by id where the index is missing.
            "tool_call_streaming": self.tool_calling,
            "structured_output": "json_schema" in self.structured_output_methods,
        }
        if self.image_inputs is not None:
            profile["image_inputs"] = self.image_inputs
            profile["image_url_inputs"] = self.image_inputs
        if self.audio_inputs is not None:
            profile["audio_inputs"] = self.audio_inputs
        if self.file_inputs is not None:
            profile["pdf_inputs"] = self.file_inputs
        if self.max_input_tokens is not None:
            profile["max_input_tokens"] = self.max_input_tokens
        if self.max_output_tokens is not None:
            profile["max_output_tokens"] = self.max_output_tokens
        if self.reasoning_output is not None:
            profile["reasoning_output"] = self.reasoning_output
        if self.reasoning_effort_levels:
            profile["reasoning_effort_levels"] = list(self.reasoning_effort_levels)
        return profile


_ALL_METHODS: Final[frozenset[StructuredMethod]] = frozenset(
    {"json_schema", "function_calling", "json_mode"}
)
_NO_SCHEMA: Final[frozenset[StructuredMethod]] = frozenset(
    {"function_calling", "json_mode"}
)
_TOOLS_ONLY: Final[frozenset[StructuredMethod]] = frozenset({"function_calling"})

_GPT_4O: Final = Capabilities(
    max_input_tokens=128_000,
    max_output_tokens=16_384,
    image_inputs=True,
    audio_inputs=False,
    file_inputs=True,
    tool_calling=True,
    tool_choice=True,
    parallel_tool_calls=True,
    strict_tools=True,
    structured_output_methods=_ALL_METHODS,
    strict_json_schema=True,
    reasoning_output=False,
)
_CLAUDE_SONNET_4_5: Final = Capabilities(
    max_input_tokens=200_000,
    max_output_tokens=64_000,
    image_inputs=True,
    audio_inputs=False,
    tool_calling=True,
    tool_choice=True,
    parallel_tool_calls=True,
    strict_tools=False,
    structured_output_methods=_TOOLS_ONLY,
    strict_json_schema=False,
    reasoning_output=False,
    one_sampling_parameter=True,
    cache_control=True,
)
_GEMINI_2_5_FLASH: Final = Capabilities(
    max_input_tokens=1_048_576,
    max_output_tokens=65_536,
    image_inputs=True,
    audio_inputs=True,
    tool_calling=True,
    tool_choice=True,
    parallel_tool_calls=False,
    strict_tools=False,
    structured_output_methods=_ALL_METHODS,
    strict_json_schema=False,
    reasoning_output=True,
    reasoning_effort_levels=("none", "low", "medium", "high"),
    thought_signatures=True,
)
_MISTRAL: Final = Capabilities(
    max_input_tokens=128_000,  # assumed (conservative), see the module docstring
    max_output_tokens=None,
    image_inputs=True,
    tool_calling=True,
    tool_choice=True,
    parallel_tool_calls=True,
    strict_tools=True,
    structured_output_methods=_ALL_METHODS,
    strict_json_schema=True,
    reasoning_output=None,
    short_tool_call_ids=True,
)
_DEEPSEEK_V3_2: Final = Capabilities(
    max_input_tokens=128_000,
    max_output_tokens=64_000,
    image_inputs=False,
    audio_inputs=False,
    file_inputs=False,
    tool_calling=True,
    tool_choice=True,
    parallel_tool_calls=False,
    strict_tools=False,
    structured_output_methods=_NO_SCHEMA,
    strict_json_schema=False,
    reasoning_output=True,
    echo_reasoning=True,
)

MODEL_CAPABILITIES: Final[dict[str, Capabilities]] = {
    "gpt-4.1": replace(_GPT_4O, max_input_tokens=1_047_576, max_output_tokens=32_768),
    "gpt-4o": _GPT_4O,
    "gpt-4o-2024-05-13": replace(
        _GPT_4O,
        max_output_tokens=4_096,
        structured_output_methods=_NO_SCHEMA,
        strict_json_schema=False,
    ),
    "gpt-4o-mini": _GPT_4O,
    "claude-sonnet-4.5": _CLAUDE_SONNET_4_5,
    "claude-opus-4": replace(
        _CLAUDE_SONNET_4_5, max_output_tokens=32_000, one_sampling_parameter=False
    ),
    "gemini-2.5-flash": _GEMINI_2_5_FLASH,
    "gemini-2.5-pro": replace(
        _GEMINI_2_5_FLASH, reasoning_effort_levels=("low", "medium", "high")
    ),
    "gemini-2.0-flash": replace(
        _GEMINI_2_5_FLASH,
        max_output_tokens=8_192,
        reasoning_output=False,
        reasoning_effort_levels=(),
    ),
    "mistral-small-2603": _MISTRAL,
    "mistral-large": replace(_MISTRAL, image_inputs=None),
    "deepseek-v3.2": _DEEPSEEK_V3_2,
    "deepseek-chat": replace(
        _DEEPSEEK_V3_2,
        max_output_tokens=8_192,
        reasoning_output=False,
        echo_reasoning=False,
    ),
}
"""The gateway's model families, keyed by exact (case-sensitive) model id."""

MODEL_ALIASES: Final[dict[str, str]] = {
    "claude-sonnet-4-5": "claude-sonnet-4.5",
    "claude-opus-4-0": "claude-opus-4",
}
"""Vendors' own spellings of a family id (Anthropic writes versions with ``-``)."""

_VERSION_SUFFIX: Final = re.compile(
    r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{3}|latest|preview(?:-\d{2}-\d{2})?)$"
)
"""One date or version suffix: ``-2025-04-14``, ``-20250514``, ``-2411`` (Mistral's
year and month), ``-001`` (Google's stable revisions), ``-latest``,
``-preview`` or ``-preview-05-20``."""


@lru_cache(maxsize=512)
def _resolve(model: str) -> str | None:
    if model in MODEL_CAPABILITIES:
        return model
    if model in MODEL_ALIASES:
        return MODEL_ALIASES[model]
    family = _VERSION_SUFFIX.sub("", model)
    if family == model:
        return None
    if family in MODEL_CAPABILITIES:
        return family
    return MODEL_ALIASES.get(family)


def resolve_family(model: object) -> str | None:
    """The table row a model id uses: itself, its alias, or its family.

    Args:
        model: The model id as sent to the gateway.

    Returns:
        The key of :data:`MODEL_CAPABILITIES`, or ``None`` for an unknown id.
        ``gpt-4.1-2025-04-14`` gives ``gpt-4.1`` and ``gpt-4o-mini-2024-07-18``
        gives ``gpt-4o-mini`` (never ``gpt-4o``): only a date or version
        suffix is taken off.
    """
    return _resolve(model) if isinstance(model, str) else None


def get_capabilities(model: object) -> Capabilities | None:
    """Look a model id up in the table (exactly, else by its family).

    Args:
        model: The model id as sent to the gateway.

    Returns:
        Its capabilities, or ``None`` for an unknown model.
    """
    if not isinstance(model, str):
        return None
    known = MODEL_CAPABILITIES.get(model)
    if known is not None:
        return known
    family = _resolve(model)
    return MODEL_CAPABILITIES[family] if family is not None else None


def keeps_cache_control(model: object, capabilities: Capabilities | None) -> bool:
    """Whether ``cache_control`` hints are sent to ``model`` (Claude models only).

    Args:
        model: The model id the request names.
        capabilities: Its row (``None`` for an unknown id).

    Returns:
        The row's ``cache_control``; for an unknown id, whether it names a
        Claude model (starts with ``claude``).
    """
    if capabilities is not None:
        return capabilities.cache_control
    return isinstance(model, str) and model.startswith("claude")


def keeps_thought_signatures(model: object, capabilities: Capabilities | None) -> bool:
    """Whether Gemini thought signatures are sent back to ``model``.

    Args:
        model: The model id the request names.
        capabilities: Its row (``None`` for an unknown id).

    Returns:
        The row's ``thought_signatures``; for an unknown id, whether it names
        a Gemini model (starts with ``gemini``).
    """
    if capabilities is not None:
        return capabilities.thought_signatures
    return isinstance(model, str) and model.startswith("gemini")


def model_profile(model: object) -> ModelProfile | None:
    """Return langchain-core's profile for a model id.

    Args:
        model: The model id.

    Returns:
        A fresh profile dict, or ``None`` for an unknown model (no guessing).
    """
    capabilities = get_capabilities(model)
    return capabilities.to_profile() if capabilities is not None else None


def default_structured_output_method(model: object) -> StructuredMethod:
    """Pick ``with_structured_output``'s method when none is given.

    Args:
        model: The model id.

    Returns:
        ``json_schema`` where the model supports it, else ``function_calling``
        (also for unknown models: the most widely supported method).
    """
    capabilities = get_capabilities(model)
    if capabilities is None:
        return "function_calling"
    return capabilities.default_structured_output_method


def intersect_profiles(
    profiles: Iterable[Mapping[str, Any] | None],
) -> ModelProfile | None:
    """The profile every one of several models satisfies (a fallback chain's).

    A key is kept only where every profile has it: the smallest of the token
    limits; a flag ``True`` only where every model has it ``True`` (``False``
    as soon as one says ``False``, absent when one does not say); a list (the
    reasoning-effort levels) cut to the values all share; any other value only
    where all agree.

    Args:
        profiles: Each member's profile (``None`` for a model without one).

    Returns:
        The common profile, or ``None`` when nothing is known in common.
    """
    items = [dict(p) if p is not None else {} for p in profiles]
    if not items:
        return None
    common: dict[str, Any] = {}
    for key in dict.fromkeys(k for item in items for k in item):
        value = _common_value([item.get(key) for item in items])
        if value is not None:
            common[key] = value
    return common or None  # type: ignore[return-value]


def _common_value(values: list[Any]) -> Any:
    """What several profiles say in common about one key (``None``: nothing)."""
    if any(v is False for v in values):
        return False
    if any(isinstance(v, bool) for v in values):
        return True if all(v is True for v in values) else None
    if None in values:
        return None
    if all(isinstance(v, int) for v in values):
        return min(values)
    if all(isinstance(v, list) for v in values):
        shared = [v for v in values[0] if all(v in other for other in values)]
        return shared or None
    return values[0] if all(v == values[0] for v in values) else None
