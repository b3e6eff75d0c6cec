"""What each model behind the gateway can do: the capability table.

One :class:`Capabilities` row per model id the gateway serves, matched exactly
(model ids are case-sensitive, as the gateway is). The table fills
langchain-core's ``profile`` (so ``create_agent`` middleware can read the
context window and whether native structured output exists) and picks
``ChatHolySheep``'s defaults: the ``with_structured_output`` method, whether
``strict`` may be sent, and whether an assistant turn's ``reasoning_content``
is echoed back or stripped.

Unknown models get no row, hence no profile and no restriction: requests are
sent as asked and the gateway has the last word.

Sources (public documentation, as read in 2026). Values marked *assumed* in
the rows are not documented for the OpenAI-compatible route through a gateway
and should be confirmed by the live tests (``tests/live``):

* ``gpt-4.1``: platform.openai.com/docs/models/gpt-4.1 (1,047,576-token
  context, 32,768 output tokens, function calling, Structured Outputs with
  ``strict``, image input, no reasoning output).
* ``claude-sonnet-4.5``: docs.anthropic.com "Models overview" (200K context,
  64K output, vision) and "OpenAI SDK compatibility" (``tool_choice`` and
  ``parallel_tool_calls`` supported; ``response_format`` and the ``strict``
  tool flag are ignored, so neither JSON schema nor JSON mode nor strict tools
  are offered; extended thinking is not returned as ``reasoning_content``) and
  "Migrating to Claude 4.5" (``temperature`` and ``top_p`` may not both be set:
  the API answers 400, so that is refused before sending).
* ``gemini-2.5-flash``: ai.google.dev/gemini-api/docs/models (1,048,576 input,
  65,536 output tokens, thinking) and ".../docs/openai" (function calling,
  ``tool_choice``, ``response_format`` JSON schema, ``reasoning_effort``;
  ``parallel_tool_calls`` and ``strict`` are not documented, so not sent;
  streamed tool-call deltas may lack ``index``, which the stream converter
  repairs; ".../docs/thought-signatures": a tool call may carry
  ``extra_content.google.thought_signature``, to be sent back with that call on
  the next turn: recommended for 2.5, required by Gemini 3 function calling).
* ``deepseek-v3.2``: api-docs.deepseek.com "Models & Pricing" (128K context,
  64K output in thinking mode), "Function Calling" (``tool_choice``; ``strict``
  only on the beta endpoint), "JSON Output" (``json_object`` only: the API
  rejects ``json_schema``), "Thinking Mode" (``reasoning_content`` must be sent
  back on assistant turns inside a tool-calling turn). ``parallel_tool_calls``
  is not a documented parameter.
* ``mistral-small-2603``: docs.mistral.ai "Function calling" (``tool_choice``
  ``auto``/``none``/``any``/``required``/named, ``parallel_tool_calls``) and
  "Custom structured outputs" (``json_schema`` with ``strict``, JSON mode);
  vision as in the Mistral Small 3.1+ line; tool call ids must be 9 letters or
  digits (the API answers 400 to others, e.g. another model's ``call_…`` ids).
  The context window is *assumed* (128K, the conservative figure of the Small
  line); the output limit and reasoning output are not documented and are left
  out of the profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from langchain_core.language_models.model_profile import ModelProfile

__all__ = [
    "MODEL_CAPABILITIES",
    "Capabilities",
    "StructuredMethod",
    "default_structured_output_method",
    "get_capabilities",
    "model_profile",
]

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
"""The ways ``with_structured_output`` can steer a model."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What one model supports through the gateway's OpenAI-compatible API.

    ``None`` means "not documented": left out of the profile, never guessed.
    """

    max_input_tokens: int | None
    """Context window in tokens."""
    max_output_tokens: int | None
    """Most tokens one answer can have."""
    image_inputs: bool
    """Whether image content parts are accepted."""
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
    reasoning_effort_levels: tuple[str, ...] = ()
    """Accepted ``reasoning_effort`` values (empty: not configurable)."""
    echo_reasoning: bool = False
    """Send an assistant turn's ``reasoning_content`` back (else strip it)."""
    one_sampling_parameter: bool = False
    """``temperature`` and ``top_p`` cannot be sent together (a 400 otherwise)."""
    short_tool_call_ids: bool = False
    """Tool call ids must be 9 letters or digits (other ids get a 400)."""
    thought_signatures: bool = False
    """Tool calls carry thought signatures to send back on the next turn
    (Gemini: ``extra_content.google.thought_signature``); stripped for others."""

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
            "image_inputs": self.image_inputs,
            "image_url_inputs": self.image_inputs,
            "tool_calling": self.tool_calling,
            "tool_choice": self.tool_choice,
            # Deltas are aggregated by index, or by id where the index is missing.
            "tool_call_streaming": self.tool_calling,
            "structured_output": "json_schema" in self.structured_output_methods,
        }
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

MODEL_CAPABILITIES: Final[dict[str, Capabilities]] = {
    "gpt-4.1": Capabilities(
        max_input_tokens=1_047_576,
        max_output_tokens=32_768,
        image_inputs=True,
        tool_calling=True,
        tool_choice=True,
        parallel_tool_calls=True,
        strict_tools=True,
        structured_output_methods=_ALL_METHODS,
        strict_json_schema=True,
        reasoning_output=False,
    ),
    "claude-sonnet-4.5": Capabilities(
        max_input_tokens=200_000,
        max_output_tokens=64_000,
        image_inputs=True,
        tool_calling=True,
        tool_choice=True,
        parallel_tool_calls=True,
        strict_tools=False,
        structured_output_methods=frozenset({"function_calling"}),
        strict_json_schema=False,
        reasoning_output=False,
        one_sampling_parameter=True,
    ),
    "gemini-2.5-flash": Capabilities(
        max_input_tokens=1_048_576,
        max_output_tokens=65_536,
        image_inputs=True,
        tool_calling=True,
        tool_choice=True,
        parallel_tool_calls=False,
        strict_tools=False,
        structured_output_methods=_ALL_METHODS,
        strict_json_schema=False,
        reasoning_output=True,
        reasoning_effort_levels=("none", "low", "medium", "high"),
        thought_signatures=True,
    ),
    "deepseek-v3.2": Capabilities(
        max_input_tokens=128_000,
        max_output_tokens=64_000,
        image_inputs=False,
        tool_calling=True,
        tool_choice=True,
        parallel_tool_calls=False,
        strict_tools=False,
        structured_output_methods=frozenset({"function_calling", "json_mode"}),
        strict_json_schema=False,
        reasoning_output=True,
        echo_reasoning=True,
    ),
    "mistral-small-2603": Capabilities(
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
    ),
}
"""The gateway's models, keyed by exact (case-sensitive) model id."""


def get_capabilities(model: object) -> Capabilities | None:
    """Look a model id up in the table.

    Args:
        model: The model id as sent to the gateway.

    Returns:
        Its capabilities, or ``None`` for an unknown model.
    """
    return MODEL_CAPABILITIES.get(model) if isinstance(model, str) else None


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
