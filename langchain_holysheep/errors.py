"""The errors raised by langchain-holysheep, and the one place they are mapped.

Every error is a :class:`HolySheepError` (a langchain-core ``ModelError``), and every
error that the ``openai`` SDK could have raised is *also* an instance of that SDK
class, so ``except openai.RateLimitError`` and ``except ModelRateLimitError`` both
keep working::

    ModelError (langchain-core)
    └── HolySheepError                      .is_retryable, .partial_text
        ├── HolySheepAuthenticationError    401  openai.AuthenticationError
        │   └── HolySheepMissingAPIKeyError      no key configured (no request sent)
        ├── HolySheepPermissionDeniedError  403  openai.PermissionDeniedError
        ├── HolySheepBadRequestError        400  openai.BadRequestError
        │   └── HolySheepContextOverflowError    prompt longer than the context window
        ├── HolySheepUnprocessableEntityError 422 openai.UnprocessableEntityError
        ├── HolySheepModelNotFoundError     404  openai.NotFoundError  (.suggestions)
        ├── HolySheepConflictError          409  openai.ConflictError
        ├── HolySheepRateLimitError         429  openai.RateLimitError (.retry_after)
        ├── HolySheepServerError            5xx  openai.InternalServerError
        ├── HolySheepAPIStatusError         any other status  openai.APIStatusError
        ├── HolySheepConnectionError        openai.APIConnectionError
        │   └── HolySheepTimeoutError       openai.APITimeoutError
        │       └── HolySheepTotalTimeoutError   the call outlasted total_timeout
        ├── HolySheepStreamError            error payload in a 200 stream
        ├── HolySheepTruncatedStreamError   a stream that ended before it finished
        ├── HolySheepResponseError          a body that is not a chat completion
        │   └── HolySheepResponseValidationError  openai.APIResponseValidationError
        ├── HolySheepEmptyAnswerError       no text, tool call or refusal (retryable)
        ├── HolySheepStructuredOutputError  not the structured output asked for
        │   └── HolySheepIncompleteOutputError   cut off (finish_reason "length")
        ├── HolySheepClientError            any other openai.OpenAIError
        ├── HolySheepInputError             refused before sending (a ValueError)
        │   └── HolySheepUnsupportedInputError  not for this model (.model, .setting)
        ├── HolySheepFallbackError          all fallback members failed (ExceptionGroup)
        ├── HolySheepCircuitOpenError       fallback member skipped: its circuit is open
        └── HolySheepResponseRejectedError  a response check rejected a fallback answer

Mapping happens in exactly one place, :func:`translate_errors`, a context manager
used around every request and around every stream iteration, sync and async. It
also masks every credential (the API key, the URL's userinfo, credential headers
and query parameters, anything shaped like a key: the rule is
:mod:`langchain_holysheep._secrets`) in the messages, bodies, requests and
responses of the error it raises and of every library error chained under it,
because gateways echo keys back and httpx errors carry the full URL.

A connection error says where and what to do: the endpoint (masked), the cause in
words (name not resolved, connection refused, TLS failure, proxy refused, timed
out while connecting) and the next step.

An error object sent with status 200 (``{"error": {"message", "type", "code"}}``
as a whole body, or as an event of a stream) is classified like the status it
stands for (:func:`equivalent_status`): a rate-limit code is a
:class:`HolySheepRateLimitError`, a context-overflow code a
:class:`HolySheepContextOverflowError`, and so on; an unknown one is a
:class:`HolySheepServerError` (a whole body) or a :class:`HolySheepStreamError`
(a stream event). Its ``status_code`` stays 200, what the gateway sent.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

import httpx2
import openai
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
    OutputParserException,
)

from langchain_holysheep._secrets import (
    MASK,
    is_credential_header,
    mask_text,
    mask_url,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from langchain_core.messages import AIMessage

    from langchain_holysheep._deadline import Deadline

__all__ = [
    "HolySheepAPIStatusError",
    "HolySheepAuthenticationError",
    "HolySheepBadRequestError",
    "HolySheepCircuitOpenError",
    "HolySheepClientError",
    "HolySheepConflictError",
    "HolySheepConnectionError",
    "HolySheepContextOverflowError",
    "HolySheepEmptyAnswerError",
    "HolySheepError",
    "HolySheepFallbackError",
    "HolySheepIncompleteOutputError",
    "HolySheepInputError",
    "HolySheepMissingAPIKeyError",
    "HolySheepModelNotFoundError",
    "HolySheepPermissionDeniedError",
    "HolySheepRateLimitError",
    "HolySheepResponseError",
    "HolySheepResponseRejectedError",
    "HolySheepResponseValidationError",
    "HolySheepServerError",
    "HolySheepStreamError",
    "HolySheepStructuredOutputError",
    "HolySheepTimeoutError",
    "HolySheepTotalTimeoutError",
    "HolySheepTruncatedStreamError",
    "HolySheepUnprocessableEntityError",
    "HolySheepUnsupportedInputError",
    "equivalent_status",
    "mask_secrets",
    "translate_errors",
]

_HOLYSHEEP_KEY_PREFIX: Final = "cr_"
_FOREIGN_KEY_HINT: Final = (
    " (HolySheep keys start with 'cr_', and the key in use does not: an OpenAI"
    " or other provider's key is rejected here. Set HOLYSHEEP_API_KEY, or"
    " api_key=..., to your HolySheep key.)"
)
_USERINFO_HINT: Final = (
    " (base_url carries user:password@, which HTTP sends as 'Authorization: Basic'"
    " in place of the API key's 'Bearer' header. If the gateway behind it needs"
    " the key too, send it in a header it reads, e.g. default_headers="
    "{'X-Api-Key': ...}, or drop the userinfo.)"
)
_CONTEXT_OVERFLOW_CODES: Final = frozenset(
    {"context_length_exceeded", "string_above_max_length", "context_window_exceeded"}
)
_RATE_LIMITED: Final = 429
_SERVER_ERRORS: Final = 500
_HTTP_ERROR_RANGE: Final = (400, 600)
# Error codes and types a gateway may send with a 200, and the status each means.
_EQUIVALENT_STATUSES: Final = {
    **dict.fromkeys(
        (
            "rate_limit_exceeded",
            "rate_limit_error",
            "rate_limited",
            "too_many_requests",
            "insufficient_quota",
            "quota_exceeded",
            "resource_exhausted",
        ),
        _RATE_LIMITED,
    ),
    **dict.fromkeys(_CONTEXT_OVERFLOW_CODES, 400),
    **dict.fromkeys(("invalid_request_error", "invalid_request", "bad_request"), 400),
    **dict.fromkeys(
        ("authentication_error", "invalid_api_key", "missing_api_key", "unauthorized"),
        401,
    ),
    **dict.fromkeys(("permission_error", "permission_denied", "forbidden"), 403),
    **dict.fromkeys(("model_not_found", "not_found_error", "not_found"), 404),
}
_CONTEXT_OVERFLOW_TEXT: Final = re.compile(
    r"context (?:length|window)|maximum context|too many (?:input )?tokens"
    r"|prompt is too long|input is too long|exceeds? the (?:model'?s? )?(?:maximum )?"
    r"(?:context|token limit)",
    re.IGNORECASE,
)


# Libraries whose errors can sit under ours in a chain; beyond any other
# exception is the caller's own context, left alone.
_LIBRARY_MODULES: Final = frozenset(
    {"openai", "httpx", "httpx2", "httpcore", "httpcore2", "h11", "h2", "anyio"}
)


def mask_secrets(text: str, secret: str | None = None) -> str:
    """Return ``text`` with ``secret`` and every credential-shaped string masked.

    Args:
        text: Any text that may have passed through the gateway.
        secret: The exact key in use, masked wherever it appears.

    Returns:
        The text with keys, URL userinfo, credential query parameters and
        bearer tokens replaced by ``***`` (see :mod:`langchain_holysheep._secrets`).
    """
    return mask_text(text, (secret,) if secret else ())


def _values(found: Iterable[str]) -> tuple[str, ...]:
    """Distinct credentials, longest first (a value inside another masks whole)."""
    return tuple(sorted({v for v in found if v}, key=len, reverse=True))


def _mask_body(body: object, values: tuple[str, ...]) -> object:
    if isinstance(body, str):
        return mask_text(body, values)
    if isinstance(body, dict):
        return {k: _mask_body(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [_mask_body(v, values) for v in body]
    return body


def _masked_request(request: httpx2.Request) -> httpx2.Request:
    """A copy of ``request`` without credentials (for errors that outlive the call).

    The URL loses its userinfo and credential parameters, the headers their
    credential values; method and everything else stay readable.
    """
    headers = [
        (name, MASK if is_credential_header(name) else value)
        for name, value in request.headers.multi_items()
    ]
    copy = type(request)(request.method, mask_url(str(request.url)), headers=headers)
    copy.extensions = {
        k: v for k, v in request.extensions.items() if k in {"timeout", "sni_hostname"}
    }
    return copy


def _masked_response(
    response: httpx2.Response, values: tuple[str, ...]
) -> httpx2.Response:
    """A copy of an (already read) error response with credentials masked.

    LangChain builds error callbacks and traces from ``error.response``, so the
    response an error carries must be as clean as its message: its body, its
    credential headers (``Set-Cookie``...) and the request it answers.
    """
    headers = [
        (name, MASK if is_credential_header(name) else value)
        for name, value in response.headers.multi_items()
        if name.lower() not in {"content-encoding", "content-length"}
    ]
    try:
        content = mask_text(response.text, values).encode()
    except Exception:  # noqa: BLE001  (a body that cannot be read is dropped)
        content = b""
    return type(response)(
        response.status_code,
        headers=headers,
        content=content,
        request=_masked_request(response.request),
    )


def _is_library_error(error: BaseException) -> bool:
    if isinstance(error, openai.OpenAIError | httpx2.HTTPError | OSError):
        return True
    return type(error).__module__.split(".", 1)[0] in _LIBRARY_MODULES


def _mask_chain(error: BaseException, values: tuple[str, ...]) -> None:
    """Mask credentials in the library errors ``error`` is chained to.

    They stay reachable as ``__cause__``/``__context__`` of the error we raise
    (the SDK's, httpx's, httpcore's and the socket errors under them). The walk
    stops at any other exception: beyond it is the caller's own context.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen or not _is_library_error(current):
            continue
        seen.add(id(current))
        _mask_in_place(current, values)
        pending.extend(e for e in (current.__cause__, current.__context__) if e)


def _mask_in_place(error: BaseException, values: tuple[str, ...]) -> None:
    """Mask credentials in an error that outlives the call.

    Tracebacks print its message, and error reporters (and a debugger) can reach
    its ``request`` and ``response``: the SDK's originals carry the
    ``Authorization`` header and the full URL, so they are swapped for masked
    copies.
    """
    error.args = tuple(
        mask_text(arg, values) if isinstance(arg, str) else arg for arg in error.args
    )
    masked: dict[str, object] = {}
    for name in ("message", "body"):
        value = getattr(error, name, None)
        if value is not None:
            masked[name] = _mask_body(value, values)
    with suppress(RuntimeError):  # httpx errors without a request raise
        request = getattr(error, "request", None)
        if isinstance(request, httpx2.Request):
            masked["request"] = _masked_request(request)
    response = getattr(error, "response", None)
    if isinstance(response, httpx2.Response):
        masked["response"] = _masked_response(response, values)
    for name, value in masked.items():
        with suppress(AttributeError):  # a read-only property stays as it is
            setattr(error, name, value)


class HolySheepError(ModelError):
    """Base class of every error raised by langchain-holysheep."""

    partial_text: str | None = None
    """Text the model had streamed before a stream failed, so nothing is lost."""


class HolySheepInputError(ValueError, ModelInvalidRequestError, HolySheepError):
    """The input cannot be sent as it is (caught before any request)."""


class HolySheepUnsupportedInputError(HolySheepInputError):
    """This model cannot take the input, though another model may.

    Raised before sending, from the model's row in the capability table: an
    image to a text-only model, a strict schema to a model without strict mode,
    a forced tool choice to a model that cannot be forced. A fallback chain
    counts it as that member's failed attempt and asks the next member.
    """

    def __init__(
        self, message: str, *, model: str | None = None, setting: str | None = None
    ) -> None:
        """Create the error.

        Args:
            message: What is wrong and how to fix it (names the model).
            model: The model id that cannot take the input.
            setting: What it cannot take (``"strict"``, ``"image_url"``...).
        """
        super().__init__(message)
        self.model = model
        self.setting = setting


class HolySheepMissingAPIKeyError(
    openai.OpenAIError, ModelAuthenticationError, HolySheepError
):
    """No API key was configured, so no request was sent."""

    def __init__(self) -> None:
        """Create the error with a message that says how to fix it."""
        super().__init__(
            "No HolySheep API key found. Set the HOLYSHEEP_API_KEY environment "
            "variable or pass api_key=... to the model. To work offline, start "
            "langchain_holysheep.testing.OfflineGateway and point base_url at it."
        )


class HolySheepAuthenticationError(
    openai.AuthenticationError, ModelAuthenticationError, HolySheepError
):
    """The gateway rejected the API key (HTTP 401). Not retried, not fallen over."""


class HolySheepPermissionDeniedError(
    openai.PermissionDeniedError, ModelPermissionDeniedError, HolySheepError
):
    """The key may not use this model or endpoint (HTTP 403)."""


class HolySheepBadRequestError(
    openai.BadRequestError, ModelInvalidRequestError, HolySheepError
):
    """The gateway rejected the request as invalid (HTTP 400)."""


class HolySheepContextOverflowError(
    openai.BadRequestError, ContextOverflowError, HolySheepError
):
    """The prompt does not fit in the model's context window (HTTP 400).

    Detected from the error code (``context_length_exceeded`` and kin) as well as
    from the message text, since the SDK's ``str(error)`` omits the code.
    """


class HolySheepUnprocessableEntityError(
    openai.UnprocessableEntityError, ModelInvalidRequestError, HolySheepError
):
    """The gateway could not process the request body (HTTP 422)."""


class HolySheepModelNotFoundError(
    openai.NotFoundError, ModelNotFoundError, HolySheepError
):
    """The model id is unknown to the gateway (HTTP 404).

    ``suggestions`` lists close model ids when the catalog is known.
    """

    suggestions: tuple[str, ...] = ()


class HolySheepConflictError(openai.ConflictError, ModelAPIError, HolySheepError):
    """The gateway reported a conflicting concurrent request (HTTP 409)."""


class HolySheepRateLimitError(
    openai.RateLimitError, ModelRateLimitError, HolySheepError
):
    """Too many requests (HTTP 429). ``retry_after`` holds the server's wait, if any."""

    @property
    def retry_after(self) -> float | None:
        """Seconds the gateway asked to wait (``Retry-After``/``retry-after-ms``)."""
        return retry_after_seconds(self.response.headers)


class HolySheepServerError(openai.InternalServerError, ModelAPIError, HolySheepError):
    """The gateway or the model behind it failed (HTTP 5xx)."""


class HolySheepAPIStatusError(openai.APIStatusError, HolySheepError):
    """Any other non-success HTTP status (for example 402 when the balance is empty)."""

    _RETRYABLE_STATUSES: ClassVar[frozenset[int]] = frozenset({408, 425})

    @property
    def is_retryable(self) -> bool:  # type: ignore[override]
        """Whether the same request may succeed later."""
        return self.status_code in self._RETRYABLE_STATUSES


class HolySheepConnectionError(
    openai.APIConnectionError, ModelConnectionError, HolySheepError
):
    """The gateway could not be reached, or the connection broke mid-response."""


class HolySheepTimeoutError(
    openai.APITimeoutError, ModelTimeoutError, HolySheepConnectionError
):
    """No response, or no next stream chunk, within the configured timeout."""


class HolySheepTotalTimeoutError(HolySheepTimeoutError):
    """The whole call (request, retries, stream) took longer than ``total_timeout``.

    ``total_timeout`` holds the bound in seconds; ``partial_text`` the text a
    stream had delivered before it was stopped. Retryable, like any timeout.
    """

    def __init__(
        self,
        total_timeout: float,
        request: httpx2.Request | None = None,
        *,
        limiter_wait: float | None = None,
    ) -> None:
        """Create the error.

        Args:
            total_timeout: The bound that was reached, in seconds.
            request: The request that was stopped (credentials masked);
                ``None`` when none was in flight (a fallback chain's deadline
                passing between attempts, or a rate-limiter slot past it).
            limiter_wait: When the rate limiter's next free slot was further
                off than the time left, that wait in seconds (``None``
                otherwise); the request was then never sent.
        """
        super().__init__(request=request)  # type: ignore[arg-type]
        self.total_timeout = total_timeout
        self.limiter_wait = limiter_wait
        if limiter_wait is None:
            self.message = (
                f"The call took longer than total_timeout={total_timeout:g} s and "
                "was stopped; a stream's text so far is in error.partial_text. "
                "Raise total_timeout (or pass total_timeout=... per call), or ask "
                "for a shorter answer (max_tokens)."
            )
        else:
            self.message = (
                f"The rate limiter's next free slot for this call is "
                f"{limiter_wait:.2f} s away, past what is left of its "
                f"total_timeout={total_timeout:g} s, so it was not sent. Raise "
                "total_timeout (or pass total_timeout=... per call), or send "
                "fewer requests at once."
            )
        self.args = (self.message,)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the bound, request, limiter wait and partial text."""
        return (
            _rebuild_total_timeout,
            (type(self), self.total_timeout, self.request, self.limiter_wait),
            {"partial_text": self.partial_text},
        )


def _rebuild_total_timeout(
    cls: type[HolySheepTotalTimeoutError],
    total_timeout: float,
    request: httpx2.Request | None,
    limiter_wait: float | None,
) -> HolySheepTotalTimeoutError:
    """Unpickle a :class:`HolySheepTotalTimeoutError` (its keyword argument kept)."""
    return cls(total_timeout, request, limiter_wait=limiter_wait)


class HolySheepStreamError(openai.APIError, ModelAPIError, HolySheepError):
    """The gateway sent an error payload inside a successful (200) stream."""


class HolySheepTruncatedStreamError(openai.APIError, ModelAPIError, HolySheepError):
    """The stream ended without a finish reason: the answer would be silently short."""


class HolySheepResponseError(openai.OpenAIError, ModelAPIError, HolySheepError):
    """The gateway answered with something that is not a chat completion.

    For example an HTML error page with status 200, a body that is not JSON, an
    empty ``choices`` list or a stream chunk that is not valid JSON. ``body`` holds
    what was received (keys masked).
    """

    def __init__(self, message: str, *, body: object = None) -> None:
        """Create the error.

        Args:
            message: What was wrong and what was received.
            body: The offending body or chunk.
        """
        super().__init__(message)
        self.body = body


class HolySheepResponseValidationError(
    openai.APIResponseValidationError, HolySheepResponseError
):
    """The SDK itself rejected a response body."""


class HolySheepClientError(openai.OpenAIError, HolySheepError):
    """Any other error from the SDK that did not involve an HTTP exchange."""


class HolySheepEmptyAnswerError(ModelAPIError, HolySheepError):
    """The model answered with no text, no tool call and no refusal.

    Never returned as a silent ``''``: it is usually a transient upstream fault,
    so it is retryable and a fallback chain falls over on it. Set
    ``allow_empty_answer=True`` on the model to get the empty message instead.
    """

    def __init__(
        self,
        message: str,
        *,
        finish_reason: object = None,
        response: AIMessage | None = None,
    ) -> None:
        """Create the error.

        Args:
            message: What was received and what to do.
            finish_reason: The answer's ``finish_reason``.
            response: The empty answer (non-streamed calls), reasoning included.
        """
        super().__init__(message)
        self.finish_reason = finish_reason
        self.response = response


class HolySheepStructuredOutputError(OutputParserException, HolySheepError):
    """The answer is not the structured output asked for.

    No tool call of the schema, or text or arguments that are not valid JSON.
    Also an ``OutputParserException`` (and so a ``ValueError``); ``llm_output``
    holds what the model sent. ``with_structured_output(include_raw=True)``
    returns it as ``parsing_error``.
    """


class HolySheepIncompleteOutputError(HolySheepStructuredOutputError):
    """The structured output was cut off: never parsed into a partial value.

    The answer stopped at ``max_tokens`` (``finish_reason: "length"``) or its
    JSON ends before it is complete. Raise ``max_tokens``, or ask for less.
    """


class ErrorPayloadError(HolySheepResponseError):
    """An error object the gateway sent with status 200 (raised while parsing).

    :func:`translate_errors` turns it into the error the object stands for (see
    :func:`equivalent_status`); the code that sent the request sets
    ``request`` first. Not part of the public tree: callers never see it.
    """

    request: httpx2.Request | None = None
    """Where the request went (set by the sender before the error is mapped)."""

    @property
    def error(self) -> object:
        """The body's ``error`` member (the error object itself)."""
        body = self.body
        return body.get("error") if isinstance(body, dict) else body


class HolySheepFallbackError(HolySheepError, ExceptionGroup[Exception]):
    """Every member of a fallback chain failed.

    Also an ``ExceptionGroup``: ``exceptions`` holds each attempt's error in the
    order the attempts were made (``except*`` works), and ``attempts`` the same
    attempts as the dicts found in ``response_metadata["fallback_attempts"]``.
    It is retryable when every attempt was.
    """

    attempts: list[dict[str, Any]]

    def __new__(
        cls,
        message: str,
        exceptions: Sequence[Exception],
        attempts: list[dict[str, Any]] | None = None,
    ) -> Self:
        """Create the group (``attempts`` defaults to none recorded)."""
        self = super().__new__(cls, message, exceptions)
        self.attempts = list(attempts or [])
        return self

    def __init__(
        self,
        message: str,
        exceptions: Sequence[Exception],
        attempts: list[dict[str, Any]] | None = None,
    ) -> None:
        """Initialise the group.

        Args:
            message: Which models were tried and why each failed.
            exceptions: The errors, in attempt order.
            attempts: The attempts as metadata dicts.
        """
        super().__init__(message, exceptions)
        self.attempts = list(attempts or [])

    @property
    def is_retryable(self) -> bool:  # type: ignore[override]
        """Whether every attempt failed in a way that may pass later."""
        # The rule lives with the fallback policy, which imports this module.
        from langchain_holysheep.fallback._policy import is_retryable  # noqa: PLC0415

        return all(is_retryable(e) for e in self.exceptions)

    def derive(  # type: ignore[override]
        self, excs: Sequence[Exception]
    ) -> HolySheepFallbackError:
        """Keep the type through ``split``/``subgroup``/``except*``."""
        return HolySheepFallbackError(self.message, excs, self.attempts)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the message, the errors and the attempts."""
        return (type(self), (self.message, list(self.exceptions), self.attempts))


class HolySheepCircuitOpenError(HolySheepError):
    """A member was skipped without a request: its circuit breaker is open."""

    is_retryable = True

    def __init__(self, model: str, retry_in: float) -> None:
        """Create the error.

        Args:
            model: The skipped member.
            retry_in: Seconds until a trial request will be let through (0 while
                another caller's trial is in flight).
        """
        self.model = model
        self.retry_in = retry_in
        when = (
            "a trial request is in flight"
            if retry_in <= 0
            else f"next trial in {retry_in:.1f} s"
        )
        super().__init__(
            f"skipped: circuit open after repeated failures ({when}); "
            "see circuit_breaker_states()"
        )


class HolySheepResponseRejectedError(HolySheepError):
    """A response check rejected a member's answer (``response_checks``)."""

    def __init__(self, reason: str, response: AIMessage) -> None:
        """Create the error.

        Args:
            reason: What the check said.
            response: The rejected answer.
        """
        self.reason = reason
        self.response = response
        super().__init__(f"response rejected: {reason}")


# The SDK class -> our class table. Looked up along the raised error's MRO, so a
# subclass the SDK adds later still maps; a test pins that every class the SDK
# exports is listed here *explicitly*, so new SDK classes get a conscious decision.
_STATUS_ERRORS: Final[dict[type[openai.APIStatusError], type[HolySheepError]]] = {
    openai.BadRequestError: HolySheepBadRequestError,
    openai.AuthenticationError: HolySheepAuthenticationError,
    openai.OAuthError: HolySheepAuthenticationError,
    openai.PermissionDeniedError: HolySheepPermissionDeniedError,
    openai.NotFoundError: HolySheepModelNotFoundError,
    openai.ConflictError: HolySheepConflictError,
    openai.UnprocessableEntityError: HolySheepUnprocessableEntityError,
    openai.RateLimitError: HolySheepRateLimitError,
    openai.InternalServerError: HolySheepServerError,
    openai.APIStatusError: HolySheepAPIStatusError,
}
_OTHER_ERRORS: Final[dict[type[Exception], type[HolySheepError]]] = {
    openai.APITimeoutError: HolySheepTimeoutError,
    openai.APIConnectionError: HolySheepConnectionError,
    openai.APIResponseValidationError: HolySheepResponseValidationError,
    # The SDK raises a bare APIError only for an error payload inside a stream.
    openai.APIError: HolySheepStreamError,
    openai.LengthFinishReasonError: HolySheepClientError,
    openai.ContentFilterFinishReasonError: HolySheepClientError,
    openai.WebSocketConnectionClosedError: HolySheepClientError,
    openai.WebSocketQueueFullError: HolySheepClientError,
    openai.OpenAIError: HolySheepClientError,
}
_STATUS_CLASSES: Final[dict[int, type[openai.APIStatusError]]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}
MAPPED_SDK_ERRORS: Final = frozenset({*_STATUS_ERRORS, *_OTHER_ERRORS})
"""Every SDK exception class with an explicit mapping (pinned by a test)."""


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Read the wait a 429/503 asks for.

    ``retry-after-ms`` first, then ``retry-after`` (seconds or an HTTP date),
    then OpenAI's ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens``
    (``"1.5s"``, ``"6m0s"``, ``"20ms"``): the reset of an exhausted limit
    (``x-ratelimit-remaining-*: 0``), else the later of the two.

    Args:
        headers: The response headers.

    Returns:
        The wait in seconds, or ``None`` when absent or unreadable.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    if (ms := lowered.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    if (seconds := lowered.get("retry-after")) is not None:
        try:
            return max(float(seconds), 0.0)
        except ValueError:
            from email.utils import parsedate_to_datetime  # noqa: PLC0415
            from time import time  # noqa: PLC0415

            try:
                return max(parsedate_to_datetime(seconds).timestamp() - time(), 0.0)
            except (TypeError, ValueError):
                return None
    return _ratelimit_reset(lowered)


_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _duration(text: str) -> float | None:
    """OpenAI's reset durations (``"1.5s"``, ``"6m0s"``, ``"20ms"``) in seconds."""
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def _ratelimit_reset(lowered: Mapping[str, str]) -> float | None:
    resets = {
        kind: _duration(value)
        for kind in ("requests", "tokens")
        if (value := lowered.get(f"x-ratelimit-reset-{kind}")) is not None
    }
    known = {kind: wait for kind, wait in resets.items() if wait is not None}
    exhausted = [
        wait
        for kind, wait in known.items()
        if lowered.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0"
    ]
    waits = exhausted or list(known.values())
    return max(waits) if waits else None


def _error_code(error: openai.APIError) -> str | None:
    if error.code:
        return error.code
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code"):
            return str(inner["code"])
    return None


def _is_context_overflow(error: openai.APIStatusError) -> bool:
    text = error.message
    if isinstance(error.body, (dict, str)):
        text += " " + json.dumps(error.body)
    return _overflows(_error_code(error), text)


def _overflows(code: str | None, text: str) -> bool:
    return code in _CONTEXT_OVERFLOW_CODES or bool(_CONTEXT_OVERFLOW_TEXT.search(text))


def equivalent_status(error: object) -> int | None:
    """The HTTP status an error object sent with status 200 stands for.

    Some gateways answer ``200`` with ``{"error": {"message", "type", "code"}}``
    (as a whole body, or as a stream event) where the API would send a 429 or a
    5xx; the error is classified as if that status had been sent.

    Args:
        error: The ``error`` member of the body or event.

    Returns:
        A 4xx/5xx status the object states (``status``, ``status_code`` or a
        numeric ``code``), else the status its ``code`` or ``type`` names
        (rate-limit codes 429, context overflow 400, ``invalid_api_key`` 401,
        ``model_not_found`` 404, ...), else ``None`` (not known: the caller
        treats it as a server error).
    """
    if not isinstance(error, dict):
        return None
    for key in ("status", "status_code", "code"):
        value = error.get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if (
            isinstance(value, int)
            and _HTTP_ERROR_RANGE[0] <= value < _HTTP_ERROR_RANGE[1]
        ):
            return value
    for key in ("code", "type"):
        value = error.get(key)
        if not isinstance(value, str):
            continue
        name = value.lower()
        if (status := _EQUIVALENT_STATUSES.get(name)) is not None:
            return status
        if "rate_limit" in name or "ratelimit" in name:
            return _RATE_LIMITED
    return None


def _payload_error(
    status: int,
    error: object,
    request: httpx2.Request,
    values: tuple[str, ...],
    where: str,
) -> HolySheepError:
    """The error for an error object sent with a 200, as if ``status`` was sent."""
    inner = _mask_body(error if isinstance(error, dict) else {"message": error}, values)
    if not isinstance(inner, dict):  # pragma: no cover (masking keeps the shape)
        inner = {"message": str(inner)}
    text = inner.get("message")
    details = ", ".join(
        f"{key}={inner[key]!r}"
        for key in ("type", "code")
        if inner.get(key) is not None
    )
    message = f"{where}: {text or 'no message'}" + (f" ({details})" if details else "")
    sdk_class = _STATUS_CLASSES.get(
        status,
        openai.InternalServerError
        if status >= _SERVER_ERRORS
        else openai.APIStatusError,
    )
    target: type[Any] = _STATUS_ERRORS[sdk_class]
    code = inner.get("code")
    if issubclass(target, ModelInvalidRequestError) and _overflows(
        str(code) if code is not None else None, message
    ):
        target = HolySheepContextOverflowError
    response = httpx2.Response(
        200,
        headers={"content-type": "application/json"},
        content=json.dumps({"error": inner}).encode(),
        request=_masked_request(request),
    )
    mapped: HolySheepError = target(message, response=response, body=inner)
    return mapped


def _sent_userinfo(response: httpx2.Response) -> bool:
    """Whether the request this answers had ``user:password@`` in its URL."""
    try:
        return bool(response.request.url.userinfo)
    except RuntimeError:  # a response built without its request
        return False


def _status_error(
    error: openai.APIStatusError, secret: str | None, values: tuple[str, ...]
) -> HolySheepError:
    target: type[Any] = next(
        (_STATUS_ERRORS[c] for c in type(error).__mro__ if c in _STATUS_ERRORS),
        HolySheepAPIStatusError,
    )
    if issubclass(target, ModelInvalidRequestError) and _is_context_overflow(error):
        target = HolySheepContextOverflowError
    message = mask_text(error.message, values)
    if target is HolySheepAuthenticationError:
        if _sent_userinfo(error.response):
            message += _USERINFO_HINT
        elif not (secret or "").startswith(_HOLYSHEEP_KEY_PREFIX):
            message += _FOREIGN_KEY_HINT
    mapped: HolySheepError = target(
        message,
        response=_masked_response(error.response, values),
        body=_mask_body(error.body, values),
    )
    return mapped


# ------------------------------------------------------- connection failures
_NEXT_STEP: Final = (
    "Check your network and proxy settings, and HOLYSHEEP_BASE_URL (or base_url=...)."
)


def _causes(error: BaseException) -> list[BaseException]:
    """The library errors under ``error``, outermost first."""
    found: list[BaseException] = []
    current = error.__cause__ or error.__context__
    while current is not None and _is_library_error(current) and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _named(causes: list[BaseException], name: str) -> BaseException | None:
    return next((e for e in causes if type(e).__name__ == name), None)


def _detail(causes: list[BaseException]) -> str:
    """The most specific non-empty message in a chain of causes."""
    return next((str(e) for e in reversed(causes) if str(e).strip()), "no detail")


def _port(url: httpx2.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _seconds(request: httpx2.Request, kind: str) -> str:
    timeouts = request.extensions.get("timeout") or {}
    value = timeouts.get(kind) if isinstance(timeouts, dict) else None
    return f"{value:g} s" if isinstance(value, int | float) else "the configured time"


_ADVICE: Final = {
    "proxy": "Check the proxy settings (HTTPS_PROXY, ALL_PROXY and NO_PROXY in the "
    "environment, or your http_client's proxy), the proxy's credentials, and "
    "HOLYSHEEP_BASE_URL (or base_url=...).",
    "connect timeout": "The host may be down, or a firewall or proxy drops the "
    "traffic; on a slow link, raise connect_timeout.",
    "dns": "Check the host name for typos, and that this machine's DNS works.",
    "refused": "Check that the gateway is running and that the port is right.",
    "tls": "If the server speaks plain http, use an http:// URL; if its "
    "certificate is not trusted here, set SSL_CERT_FILE or pass an http_client "
    "that trusts it.",
    "read timeout": "The model may be slow to answer: raise timeout, or stream "
    "the answer.",
    "broken": "Retrying usually helps; if it keeps happening, a proxy or load "
    "balancer may be cutting long responses.",
    "other": "",
}


def _connection_failure(error: openai.APIConnectionError) -> tuple[str, str]:
    """Say why a connection failed, in words, and what to do about it.

    Reads the httpx, httpcore and socket errors chained under the SDK's error.

    Args:
        error: The SDK's connection (or timeout) error.

    Returns:
        ``(cause, advice)``, e.g. ``("connection refused by 127.0.0.1:9 (nothing
        listens there)", "Check that the gateway is running ...")``.
    """
    causes = _causes(error)
    url = error.request.url
    at = f"{url.host}:{_port(url)}"
    detail = _detail(causes)
    if _named(causes, "ProxyError"):
        kind, cause = "proxy", f"the proxy refused to connect to {at} ({detail})"
    elif _named(causes, "ConnectTimeout"):
        limit = _seconds(error.request, "connect")
        kind = "connect timeout"
        cause = f"timed out while connecting to {at} (connect_timeout={limit})"
    elif any(isinstance(e, socket.gaierror) for e in causes):
        kind = "dns"
        cause = f"the host name {url.host!r} could not be resolved ({detail})"
    elif any(isinstance(e, ConnectionRefusedError) for e in causes):
        kind, cause = "refused", f"connection refused by {at} (nothing listens there)"
    elif any(isinstance(e, ssl.SSLError) for e in causes):
        kind, cause = "tls", f"the TLS handshake with {at} failed ({detail})"
    elif _named(causes, "ReadTimeout") or isinstance(error, openai.APITimeoutError):
        limit = _seconds(error.request, "read")
        kind = "read timeout"
        cause = f"{at} sent no response, or no next stream chunk, within {limit}"
    elif _named(causes, "RemoteProtocolError") or _named(causes, "ReadError"):
        kind, cause = "broken", f"the connection to {at} broke mid-response ({detail})"
    else:
        kind, cause = "other", f"the connection to {at} failed ({detail})"
    return cause, _ADVICE[kind]


def _connection_message(
    error: openai.APIConnectionError, values: tuple[str, ...]
) -> str:
    request = error.request
    what = "timed out" if isinstance(error, openai.APITimeoutError) else "failed"
    where = f"{request.method} {mask_url(str(request.url))}"
    cause, advice = _connection_failure(error)
    message = f"The request to the gateway {what} ({where}): {cause}."
    step = "" if "proxy settings" in advice else _NEXT_STEP
    message = " ".join(part for part in (message, advice, step) if part)
    return mask_text(message, values)


def to_holysheep_error(  # noqa: PLR0911  (one return per family reads best)
    error: BaseException,
    secret: str | None,
    credentials: Iterable[str] = (),
) -> HolySheepError:
    """Translate one SDK (or parsing) error into this package's tree.

    Args:
        error: The error the SDK raised, or a JSON decoding error from a stream.
        secret: The API key, masked out of every message and body.
        credentials: Other credentials in use (URL userinfo, header and query
            values), masked too.

    Returns:
        The equivalent :class:`HolySheepError`, with credentials masked.
    """
    if isinstance(error, HolySheepError):
        return error
    values = _values([*((secret,) if secret else ()), *credentials])
    if isinstance(error, openai.APIStatusError) and not isinstance(
        error, openai.APIResponseValidationError
    ):
        return _status_error(error, secret, values)
    if isinstance(error, openai.APIConnectionError):
        message = _connection_message(error, values)
        request = _masked_request(error.request)
        if isinstance(error, openai.APITimeoutError):
            timeout = HolySheepTimeoutError(request=request)
            timeout.message, timeout.args = message, (message,)
            return timeout
        return HolySheepConnectionError(message=message, request=request)
    if isinstance(error, openai.APIResponseValidationError):
        return HolySheepResponseValidationError(
            _masked_response(error.response, values),
            _mask_body(error.body, values),
            message=mask_text(error.message, values),
        )
    if isinstance(error, openai.APIError):
        if (status := equivalent_status(error.body)) is not None:
            where = "The gateway reported an error inside the stream"
            return _payload_error(status, error.body, error.request, values, where)
        message = f"The gateway reported an error inside the stream: {error.message}"
        return HolySheepStreamError(
            mask_text(message, values),
            _masked_request(error.request),
            body=_mask_body(error.body, values),
        )
    return HolySheepClientError(mask_text(str(error), values))


@contextmanager
def translate_errors(
    secret: str | None = None,
    partial: Callable[[], str] | None = None,
    *,
    credentials: Callable[[], Iterable[str]] | None = None,
    deadline: Deadline | None = None,
) -> Iterator[None]:
    """Map everything the SDK raises inside the block to :class:`HolySheepError`.

    Used around each request and around each stream iteration (a plain ``with``
    works inside coroutines and async generators too, so sync and async share it).
    A chunk that is not valid JSON becomes a :class:`HolySheepResponseError` that
    quotes the chunk.

    Args:
        secret: The API key in use, masked out of every message and body.
        partial: Returns the text streamed so far; kept on the error as
            ``partial_text`` so a failed stream loses nothing.
        credentials: Returns the other credentials in use (see
            ``_secrets.credential_values``); called only when an error is
            translated, so the happy path pays nothing.
        deadline: The call's ``total_timeout`` deadline: a timeout once it
            has passed is a :class:`HolySheepTotalTimeoutError`.

    Yields:
        Nothing; errors raised in the block are translated.

    Raises:
        HolySheepError: The translated error, chained to the original.
    """
    try:
        yield
    except ErrorPayloadError as payload:
        if payload.request is None:  # pragma: no cover (every sender sets it)
            raise
        status = equivalent_status(payload.error) or _SERVER_ERRORS
        where = "The gateway answered with an error (HTTP 200)"
        values = _all_values(secret, credentials)
        mapped = _payload_error(status, payload.error, payload.request, values, where)
        _keep_partial(mapped, partial)
        raise mapped from None
    except HolySheepError as error:
        # Raised by our own parsing, which quotes what the gateway sent.
        _mask_in_place(error, _all_values(secret, credentials))
        _keep_partial(error, partial)
        raise
    except openai.OpenAIError as error:
        values = _all_values(secret, credentials)
        mapped = to_holysheep_error(error, secret, values)
        if (
            deadline is not None
            and isinstance(mapped, HolySheepTimeoutError)
            and deadline.expired
        ):
            mapped = HolySheepTotalTimeoutError(deadline.seconds, mapped.request)
        _keep_partial(mapped, partial)
        _mask_chain(error, values)  # it stays reachable as __cause__
        raise mapped from error
    except json.JSONDecodeError as error:
        values = _all_values(secret, credentials)
        _mask_in_place(error, values)
        chunk = mask_text(error.doc[:500], values)
        message = f"The gateway sent a stream chunk that is not valid JSON: {chunk!r}"
        mapped = HolySheepResponseError(message, body=chunk)
        _keep_partial(mapped, partial)
        raise mapped from error


def _all_values(
    secret: str | None, credentials: Callable[[], Iterable[str]] | None
) -> tuple[str, ...]:
    found = [*((secret,) if secret else ()), *(credentials() if credentials else ())]
    return _values(found)


def _keep_partial(error: HolySheepError, partial: Callable[[], str] | None) -> None:
    if partial is not None and error.partial_text is None and (text := partial()):
        error.partial_text = text
