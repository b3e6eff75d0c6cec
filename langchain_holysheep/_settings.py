"""Settings shared by every HolySheep model class: defaults and their validation.

One home for what the chat model and the embeddings class must agree on (the
gateway URL, its environment variables and how a URL is checked), so the two
cannot drift apart. Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
import warnings
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "check_base_url",
    "is_loopback",
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
