"""Settings shared by every HolySheep model class: defaults and their validation.

One home for what the chat model and the embeddings class must agree on (the
gateway URL, its environment variables, how a URL is checked, and the connection
fields with the client and error plumbing built on them), so the two cannot
drift apart.
"""

from __future__ import annotations

import ipaddress
import math
import os
import sys
import warnings
from functools import lru_cache
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import urlsplit

import langchain_core
import pydantic
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from langchain_holysheep._client import (
    ClientConfig,
    aclose_async_clients,
    close_sync_client,
)
from langchain_holysheep._secrets import (
    credential_values,
    mask_headers,
    mask_input,
    mask_query,
    mask_url,
    placeholder_slot,
    restore_credentials,
    serialize_credentials,
    serialized_secret_fields,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from contextlib import AbstractContextManager

    import openai
    from langchain_core.load.serializable import (
        SerializedConstructor,
        SerializedNotImplemented,
    )
    from pydantic_core import InitErrorDetails

    from langchain_holysheep._deadline import Deadline

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "GatewaySettings",
    "HolySheepSerializable",
    "check_base_url",
    "init_masking_credentials",
    "is_loopback",
    "masked_validation_error",
    "per_call_seconds",
    "restore_key",
    "sdk_timeout",
    "without_key",
]

DEFAULT_BASE_URL: Final = "https://api.holysheep.ai/v1"
"""The gateway's OpenAI-compatible endpoint."""
API_KEY_ENV: Final = "HOLYSHEEP_API_KEY"
"""The environment variable holding the API key."""
BASE_URL_ENV: Final = "HOLYSHEEP_BASE_URL"
"""The environment variable overriding the gateway URL."""

_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, ``127.0.0.1``, ``::1``).

    Args:
        host: A host name or IP address, without port or brackets.

    Returns:
        True for loopback names and addresses.
    """
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_INTERNAL: Final = tuple(
    str(Path(module.__file__).parent) + os.sep
    for module in (pydantic, langchain_core, sys.modules[__package__ or __name__])
    if module.__file__
)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the user's line.

    That is the first frame outside this package, pydantic and langchain-core
    (the line that constructs the model), counted from the caller.
    """
    frame, level = sys._getframe(1), 1  # noqa: SLF001  (what warnings does)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    return level


def check_base_url(value: str, *, stacklevel: int | None = None) -> str:
    """Validate and normalise a gateway URL (a pydantic field validator's body).

    Rejects URLs that are not http(s) with a host, URLs with a query string
    or fragment (the SDK appends request paths after them: use
    ``default_query``), and HolySheep's Anthropic-native endpoint
    (``https://api.holysheep.ai`` without ``/v1``); warns when the key would
    travel over plain http to another machine. Messages mask the URL's
    credentials.

    Args:
        value: The URL as configured.
        stacklevel: Passed to :func:`warnings.warn` for the plain-http warning;
            by default the warning points at the first line outside this
            package, pydantic and langchain-core (the one that constructs the
            model, or calls ``list_models``).

    Returns:
        The URL without a trailing slash.

    Raises:
        ValueError: If the URL cannot be the OpenAI-compatible endpoint.
    """
    shown = mask_url(value)  # messages never quote a URL's credentials
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        parts, hostname = None, None
    if parts is None or parts.scheme not in {"http", "https"} or not hostname:
        msg = (
            f"base_url must be an http(s) URL with a host, got {shown!r}. "
            f"Use the gateway's OpenAI-compatible endpoint, {DEFAULT_BASE_URL}."
        )
        raise ValueError(msg)
    if parts.query or parts.fragment:
        msg = (
            f"base_url {shown!r} has a query string or fragment, which the SDK "
            "would mangle (request paths are appended after it). Pass query "
            "parameters as default_query={...} instead."
        )
        raise ValueError(msg)
    if hostname == "api.holysheep.ai" and not parts.path.rstrip("/"):
        msg = (
            f"base_url {shown!r} is HolySheep's Anthropic-native endpoint; "
            f"langchain-holysheep needs the OpenAI-compatible one, {DEFAULT_BASE_URL}."
        )
        raise ValueError(msg)
    if parts.scheme == "http" and not is_loopback(hostname):
        warnings.warn(
            f"base_url {shown!r} is plain http to a non-loopback host: the API "
            "key and your data travel unencrypted. Use https.",
            UserWarning,
            stacklevel=stacklevel or _user_stacklevel(),
        )
    return value.rstrip("/")


def per_call_seconds(value: object, name: str) -> float | None:
    """A per-call ``timeout``/``total_timeout``, checked (``None``: not given).

    Args:
        value: What the call passed.
        name: The option's name, for the message.

    Returns:
        The seconds, or ``None``.

    Raises:
        HolySheepInputError: Not a positive, finite number of seconds.
    """
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        from langchain_holysheep._convert import input_error  # noqa: PLC0415

        msg = f"{name} must be a positive number of seconds, got {value!r}."
        raise input_error(msg)
    return float(value)


@lru_cache(maxsize=32)
def sdk_timeout(read: float, connect: float) -> openai.Timeout:
    """The SDK timeout for these seconds, built once (it is immutable)."""
    import openai  # noqa: PLC0415  (already loaded by the client)

    return openai.Timeout(read, connect=connect)


def without_key(state: dict[Any, Any]) -> dict[Any, Any]:
    """A pydantic pickle state with ``api_key`` emptied: a pickle may travel.

    Args:
        state: What ``BaseModel.__getstate__`` returned.

    Returns:
        The same state with the key field set to ``None``.
    """
    fields = dict(state["__dict__"])
    fields["api_key"] = None
    return {**state, "__dict__": fields}


def masked_validation_error(error: ValidationError) -> ValidationError:
    """The same validation error, its inputs with credentials masked.

    ``hide_input_in_errors`` keeps inputs out of ``str(error)``, but
    ``error.errors()`` (what error reporters record) still carries them.

    Args:
        error: What pydantic raised.

    Returns:
        An equal error whose every ``input`` has its credentials masked.
    """
    details: list[InitErrorDetails] = []
    for item in error.errors(include_url=False):
        detail: InitErrorDetails = {
            "type": item["type"],
            "loc": item["loc"],
            "input": mask_input(item["loc"], item["input"]),
        }
        if "ctx" in item:
            detail["ctx"] = item["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(error.title, details, hide_input=True)


def init_masking_credentials(init: Callable[..., None], data: dict[str, Any]) -> None:
    """Run a model's ``__init__``; a validation error leaves with credentials masked.

    The masked error is raised outside the ``except`` block, so the original
    (with its inputs) is not chained as its ``__context__``.

    Args:
        init: The next ``__init__`` in the MRO (``super().__init__``).
        data: The keyword arguments.

    Raises:
        ValidationError: The input is invalid (see :func:`masked_validation_error`).
    """
    try:
        init(**data)
    except ValidationError as error:
        masked = masked_validation_error(error)
    else:
        return
    raise masked


def restore_key(model: BaseModel) -> None:
    """Give an unpickled model the key from ``HOLYSHEEP_API_KEY`` (or none).

    Args:
        model: The model ``__setstate__`` just restored.
    """
    object.__setattr__(model, "api_key", secret_from_env(API_KEY_ENV, default=None)())


class HolySheepSerializable:
    """The LangChain serialization answers HolySheep's chat models share.

    ``dumpd`` names the key by its environment variable, never its value, and
    the namespace is the public module the class is imported from: its
    ``__module__`` up to the first private part, so a class defined in
    ``langchain_holysheep.fallback._chain`` loads from
    ``langchain_holysheep.fallback``. List it before ``BaseChatModel``.

    The other credentials are references too: a ``base_url`` with userinfo to
    ``HOLYSHEEP_BASE_URL``, each credential header and query parameter to
    ``HOLYSHEEP_HEADER_<NAME>`` / ``HOLYSHEEP_QUERY_<NAME>`` (the rule and the
    names: :mod:`langchain_holysheep._secrets`). ``load``/``loads`` restore them
    from ``secrets_map`` (or the environment); a missing one fails, named.
    """

    def _connection_fields(
        self,
    ) -> tuple[str | None, Mapping[str, Any] | None, Mapping[str, Any] | None]:
        """``(base_url, default_headers, default_query)`` as serialized kwargs."""
        return (
            getattr(self, "base_url", None),
            getattr(self, "default_headers", None),
            getattr(self, "default_query", None),
        )

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Where ``dumpd`` finds credentials: environment variables, never values."""
        return {
            "api_key": API_KEY_ENV,
            **serialized_secret_fields(*self._connection_fields()),
        }

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """Serialize, each credential a reference to an environment variable.

        Returns:
            The constructor form (``BaseChatModel``'s), with secret references
            where the URL, headers and query hold credentials.
        """
        data: SerializedConstructor | SerializedNotImplemented
        # The class after this mixin in the MRO is BaseChatModel (Serializable).
        data = super().to_json()  # type: ignore[misc]
        if data["type"] == "constructor":
            serialize_credentials(data["kwargs"], *self._connection_fields())
        return data

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """The model can be serialized with ``dumpd``/``dumps``."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Return the public module, e.g. ``["langchain_holysheep", "fallback"]``."""
        parts = cls.__module__.split(".")
        return list(takewhile(lambda part: not part.startswith("_"), parts))


class GatewaySettings(BaseModel):
    """The connection settings every HolySheep model class shares, in one place.

    ``ChatHolySheep`` and ``HolySheepEmbeddings`` inherit these fields and the
    plumbing built on them: the pooled-client key, per-request timeouts and
    retries, error translation with credentials masked, and ``close``/``aclose``.

    Credentials (the key, the URL's userinfo, credential headers and query
    parameters: the rule is :mod:`langchain_holysheep._secrets`) are masked in
    ``repr``/``str`` and validation errors never quote an input; a masked
    placeholder (``***``) is refused as a value. Attribute access and
    ``model_dump`` give the real values (clients are built from them).
    """

    # A validation error would quote its input, credentials included.
    model_config = ConfigDict(hide_input_in_errors=True)

    if not TYPE_CHECKING:  # type checkers keep pydantic's field signature

        def __init__(self, /, **data: Any) -> None:
            """Validate the settings; errors never carry a credential."""
            init_masking_credentials(super().__init__, data)

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env(API_KEY_ENV, default=None)
    )
    """HolySheep API key; defaults to ``HOLYSHEEP_API_KEY``. Never logged."""
    base_url: str = Field(
        default_factory=from_env(BASE_URL_ENV, default=DEFAULT_BASE_URL),
        validate_default=True,  # a URL from the environment is checked too
    )
    """Gateway URL; defaults to ``HOLYSHEEP_BASE_URL``, else the public gateway."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for a response, or for the next stream chunk."""
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

    @model_validator(mode="before")
    @classmethod
    def _none_credentials_mean_environment(cls, values: Any) -> Any:
        """A ``None`` credential is read from its environment variable.

        ``langchain_core.load.load`` passes ``None`` for a secret it was not
        given: ``api_key`` then reads ``HOLYSHEEP_API_KEY``, a ``base_url`` that
        held credentials ``HOLYSHEEP_BASE_URL``, and a credential header or
        query parameter ``HOLYSHEEP_HEADER_<NAME>``/``HOLYSHEEP_QUERY_<NAME>``;
        a missing one fails, naming the variable.
        """
        if not isinstance(values, dict):
            return values
        if values.get("api_key", "") is None:
            values = {k: v for k, v in values.items() if k != "api_key"}
        return restore_credentials(values, os.environ, cls.__name__)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        """A masked placeholder (``***``) is not a credential: refuse it early."""
        slot = placeholder_slot(
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            base_url=self.base_url,
            headers=self.default_headers,
            query=self.default_query,
        )
        if slot is not None:
            msg = (
                f"{slot} is the masked placeholder '***' that repr(), dumps() and "
                "logs show, not a credential. Pass the real value (a model "
                "restored with langchain_core.load needs secrets_map=...)."
            )
            raise ValueError(msg)
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Fields for ``repr``/``str``, with every credential masked."""
        for name, value in super().__repr_args__():
            if name == "base_url" and isinstance(value, str):
                yield name, mask_url(value)
            elif name == "default_headers" and isinstance(value, dict):
                yield name, mask_headers(value)
            elif name == "default_query" and isinstance(value, dict):
                yield name, mask_query(value)
            else:
                yield name, value

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the key: a pickle is a serialization, and may travel.

        The unpickled copy reads ``HOLYSHEEP_API_KEY`` (see ``__setstate__``), so
        multiprocessing and Ray workers need that variable set, as they would
        for a model loaded with ``langchain_core.load``. The URL, headers and
        query are kept as they are, credentials included: that is how a worker
        gets them, so treat a pickle as a secret.
        """
        return without_key(super().__getstate__())

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Restore a pickled model, taking the key from ``HOLYSHEEP_API_KEY``."""
        super().__setstate__(state)
        restore_key(self)

    def close(self) -> None:
        """Close the shared sync connection pool these settings use.

        Pools are shared by every model with the same gateway, key and headers;
        a closed pool is rebuilt on the next call. Usually unnecessary: pools
        live for the process.
        """
        if self.api_key is not None:
            close_sync_client(self._client_config(self.http_client))

    async def aclose(self) -> None:
        """Close this event loop's async connection pool for these settings.

        Pools on a loop are closed anyway when the loop shuts down
        (``asyncio.run`` returning).
        """
        if self.api_key is not None:
            await aclose_async_clients(self._client_config(self.http_async_client))

    def _client_config(self, http_client: Any) -> ClientConfig:
        """The pool key for ``http_client``; raises if no key is configured."""
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

    def _request_options(
        self, timeout: float | None = None, total_timeout: float | None = None
    ) -> openai.RequestOptions:
        """Per-request SDK options (the client's defaults already send JSON).

        Args:
            timeout: A per-call ``timeout``: replaces the field for this call,
                and bounds the connect wait too (as the SDK's own per-call
                ``timeout`` does). ``None``: the fields.
            total_timeout: The call's bound, if any: no single wait is longer.
        """
        read, connect = self.timeout, self.connect_timeout
        if timeout is not None:
            read, connect = timeout, min(connect, timeout)
        if total_timeout is not None:
            read, connect = min(read, total_timeout), min(connect, total_timeout)
        # A fresh dict per call (callers may add to it); the Timeout is shared.
        return {
            "timeout": sdk_timeout(read, connect),
            "max_retries": self.max_retries,
        }

    def _translate_errors(
        self,
        partial: Callable[[], str] | None = None,
        deadline: Deadline | None = None,
    ) -> AbstractContextManager[None]:
        from langchain_holysheep.errors import translate_errors  # noqa: PLC0415

        secret = self.api_key.get_secret_value() if self.api_key else None
        return translate_errors(
            secret,
            partial=partial,
            credentials=self._credential_values,
            deadline=deadline,
        )

    def _credential_values(self) -> tuple[str, ...]:
        """Every credential of these settings (``_secrets.credential_values``)."""
        return credential_values(
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            base_url=self.base_url,
            headers=self.default_headers or {},
            query=self.default_query or {},
        )
