"""Settings shared by every HolySheep model class: defaults and their validation.

One home for what the chat model and the embeddings class must agree on (the
gateway URL, its environment variables, how a URL is checked, and the connection
fields with the client and error plumbing built on them), so the two cannot
drift apart.
"""

from __future__ import annotations

import ipaddress
import math
import warnings
from functools import lru_cache
from itertools import takewhile
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from langchain_core.utils import from_env, secret_from_env
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from langchain_holysheep._client import (
    ClientConfig,
    aclose_async_clients,
    close_sync_client,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    import openai

    from langchain_holysheep._deadline import Deadline

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "GatewaySettings",
    "HolySheepSerializable",
    "check_base_url",
    "is_loopback",
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


def check_base_url(value: str, *, stacklevel: int = 4) -> str:
    """Validate and normalise a gateway URL (a pydantic field validator's body).

    Rejects URLs that are not http(s) with a host and HolySheep's
    Anthropic-native endpoint (``https://api.holysheep.ai`` without ``/v1``);
    warns when the key would travel over plain http to another machine.

    Args:
        value: The URL as configured.
        stacklevel: Passed to :func:`warnings.warn` for the plain-http warning;
            the default points at the line that constructs the model when this
            is called from a pydantic field validator.

    Returns:
        The URL without a trailing slash.

    Raises:
        ValueError: If the URL cannot be the OpenAI-compatible endpoint.
    """
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
            f"langchain-holysheep needs the OpenAI-compatible one, {DEFAULT_BASE_URL}."
        )
        raise ValueError(msg)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        warnings.warn(
            f"base_url {value!r} is plain http to a non-loopback host: the API "
            "key and your data travel unencrypted. Use https.",
            UserWarning,
            stacklevel=stacklevel,
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
    """

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Where ``dumpd`` finds the key: an environment variable, never a value."""
        return {"api_key": API_KEY_ENV}

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
    retries, error translation with the key masked, and ``close``/``aclose``.
    """

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
    def _api_key_none_means_environment(cls, values: Any) -> Any:
        """``api_key=None`` reads ``HOLYSHEEP_API_KEY``, as a loaded model does.

        ``langchain_core.load.load`` passes ``None`` for a secret it was not given.
        """
        if isinstance(values, dict) and values.get("api_key", "") is None:
            return {k: v for k, v in values.items() if k != "api_key"}
        return values

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the key: a pickle is a serialization, and may travel.

        The unpickled copy reads ``HOLYSHEEP_API_KEY`` (see ``__setstate__``), so
        multiprocessing and Ray workers need that variable set, as they would
        for a model loaded with ``langchain_core.load``.
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
        return translate_errors(secret, partial=partial, deadline=deadline)
