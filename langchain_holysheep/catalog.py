"""The gateway's model catalog: ``GET /v1/models``, cached, with did-you-mean.

* :func:`list_models` / :func:`alist_models` return the model ids the gateway
  serves, cached per (gateway URL, API key) for ``ttl`` seconds, so checking a
  model id costs one request per process and key, not one per call.
* :func:`suggest_models` finds the closest ids to a wrong one. Model ids are
  case-sensitive: ``"Mistral-Small-2603"`` is *not* ``"mistral-small-2603"``,
  so a case-insensitive exact match is always the first suggestion.
* :func:`model_not_found_error` builds the
  :class:`~langchain_holysheep.errors.HolySheepModelNotFoundError` that
  ``ChatHolySheep`` raises for an unknown model, carrying ``.suggestions`` and
  a "did you mean ...?" message: before any chat request with
  ``validate_model=True`` (:func:`ensure_served`), or after the gateway's 404
  (:func:`enrich_not_found`).

This module was ``langchain_holysheep.models`` (a name that read as "chat
models"); that name still imports it. Like the chat model, it imports
``openai`` only when a request is made.
"""

from __future__ import annotations

import difflib
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from pydantic import SecretStr

from langchain_holysheep._client import (
    ClientConfig,
    get_async_client,
    get_sync_client,
)
from langchain_holysheep._http import aget_json, get_json
from langchain_holysheep._secrets import mask_url
from langchain_holysheep._settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    check_base_url,
    sdk_timeout,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import openai

    from langchain_holysheep.errors import HolySheepModelNotFoundError

__all__ = [
    "DEFAULT_CATALOG_TTL",
    "aenrich_not_found",
    "aensure_served",
    "alist_models",
    "amodel_ids_for_config",
    "cached_model_ids",
    "clear_model_cache",
    "enrich_not_found",
    "ensure_served",
    "list_models",
    "model_ids_for_config",
    "model_not_found_error",
    "suggest_models",
]

DEFAULT_CATALOG_TTL: Final = 300.0
"""Seconds a fetched catalog stays fresh (5 minutes)."""

_MODELS_PATH: Final = "/models"
# A catalog fetched only to enrich a 404 must answer fast, or not at all.
_QUICK_CATALOG_TIMEOUT: Final = 3.0
_SUGGESTION_CUTOFF: Final = 0.6

_CacheKey = tuple[str, str]
_cache_lock = threading.Lock()
_cache: dict[_CacheKey, tuple[float, tuple[str, ...]]] = {}


# --------------------------------------------------------------------------- #
# Suggestions and the not-found error
# --------------------------------------------------------------------------- #


def suggest_models(model: str, available: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` served model ids closest to ``model``.

    A model id that differs from ``model`` only by case comes first (ids are
    case-sensitive, so that is the most likely fix), then the closest ids by
    ``difflib`` similarity, compared case-insensitively. ``model`` itself is
    never suggested.

    Args:
        model: The id that was not found, e.g. ``"Mistral-Small-2603"``.
        available: The ids the gateway serves.
        n: The most suggestions to return.

    Returns:
        The suggestions, best first (possibly empty).

    Example:
        >>> suggest_models("Mistral-Small-2603", ["gpt-4.1", "mistral-small-2603"])
        ['mistral-small-2603']
    """
    if n <= 0:
        return []
    ids = [m for m in dict.fromkeys(available) if m != model]
    lowered = model.lower()
    suggestions = [m for m in ids if m.lower() == lowered]
    by_lower: dict[str, str] = {}
    for m in ids:
        by_lower.setdefault(m.lower(), m)
    close = difflib.get_close_matches(
        lowered, list(by_lower), n=n, cutoff=_SUGGESTION_CUTOFF
    )
    suggestions += [by_lower[m] for m in close if by_lower[m] not in suggestions]
    return suggestions[:n]


def _did_you_mean(model: str, suggestions: list[str], count: int) -> str:
    if not suggestions:
        return (
            f"No served model id is close to {model!r}; the gateway serves "
            f"{count} models: call langchain_holysheep.catalog.list_models() "
            "to see them."
        )
    quoted = " or ".join(repr(s) for s in suggestions)
    text = f"Did you mean {quoted}?"
    same_case = [s for s in suggestions if s.lower() == model.lower()]
    if same_case:
        text += f" Model ids are case-sensitive: use {same_case[0]!r}, not {model!r}."
    return text


def model_not_found_error(
    model: str,
    available: Iterable[str],
    original_error: HolySheepModelNotFoundError | None = None,
    *,
    base_url: str | None = None,
) -> HolySheepModelNotFoundError:
    """Build the model-not-found error for ``model``, with close suggestions.

    Args:
        model: The unknown model id.
        available: The ids the gateway serves (its catalog).
        original_error: The gateway's own 404, if there was one: its message,
            response, body and ``partial_text`` are kept, and the new error is
            meant to be raised ``from`` it. ``None`` when the id was rejected
            before any chat request (``validate_model=True``).
        base_url: The gateway URL, named (masked) in the message when there is no
            original error.

    Returns:
        A :class:`~langchain_holysheep.errors.HolySheepModelNotFoundError` with
        ``.suggestions`` set and a message ending in "did you mean ...?".
    """
    from langchain_holysheep.errors import (  # noqa: PLC0415  (imports openai)
        HolySheepModelNotFoundError,
    )

    ids = list(dict.fromkeys(available))
    suggestions = suggest_models(model, ids)
    hint = _did_you_mean(model, suggestions, len(ids))
    if original_error is not None:
        message = f"{original_error.message.rstrip()} {hint}"
        error = HolySheepModelNotFoundError(
            message, response=original_error.response, body=original_error.body
        )
        error.partial_text = original_error.partial_text
    else:
        where = f" at {mask_url(base_url)}" if base_url else ""
        message = f"The gateway{where} does not serve the model {model!r}. {hint}"
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
        }
        error = HolySheepModelNotFoundError(
            message, response=_local_404(base_url), body=body
        )
    error.suggestions = tuple(suggestions)
    return error


def _local_404(base_url: str | None) -> Any:
    """A stand-in 404 response for an error detected before any request."""
    import httpx2  # noqa: PLC0415  (the openai SDK's HTTP layer, already loaded)

    # The error outlives the call: its request names the URL, not its credentials.
    url = mask_url(f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/chat/completions")
    return httpx2.Response(404, request=httpx2.Request("POST", url))


# --------------------------------------------------------------------------- #
# Fetching and caching the catalog
# --------------------------------------------------------------------------- #


def _parse_catalog(data: object) -> tuple[str, ...]:
    """The model ids of a ``/models`` body, in the gateway's order."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        from langchain_holysheep.errors import (  # noqa: PLC0415
            HolySheepResponseError,
        )

        snippet = str(data)[:200]
        msg = (
            f"The gateway's /models response is not a model list: {snippet!r}. "
            "Check that base_url points at the gateway's /v1 endpoint."
        )
        raise HolySheepResponseError(msg, body=data)
    ids = (item.get("id") for item in items if isinstance(item, dict))
    return tuple(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def _cache_key(config: ClientConfig) -> _CacheKey:
    return (config.base_url, config.key_digest)


def _check_ttl(ttl: float) -> None:
    if not isinstance(ttl, int | float) or math.isnan(ttl) or ttl < 0:
        from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415

        msg = f"ttl must be a number of seconds >= 0 (0: no caching), got {ttl!r}."
        raise HolySheepInputError(msg)


def cached_model_ids(
    config: ClientConfig, ttl: float = DEFAULT_CATALOG_TTL
) -> tuple[str, ...] | None:
    """The cached catalog for a client configuration, if fresh; never fetches.

    Args:
        config: The connection settings (the cache is keyed by URL and key).
        ttl: How old (in seconds) a cached catalog may be.

    Returns:
        The model ids, or ``None`` when nothing fresh is cached.
    """
    with _cache_lock:
        entry = _cache.get(_cache_key(config))
    if entry is None or time.monotonic() - entry[0] > ttl:
        return None
    return entry[1]


def _store(config: ClientConfig, ids: tuple[str, ...]) -> None:
    with _cache_lock:
        _cache[_cache_key(config)] = (time.monotonic(), ids)


def clear_model_cache() -> None:
    """Forget every cached catalog (the next lookup fetches again)."""
    with _cache_lock:
        _cache.clear()


def _fresh(config: ClientConfig, ttl: float, refresh: bool) -> tuple[str, ...] | None:
    """The cached ids a lookup may answer with, or ``None`` to fetch."""
    _check_ttl(ttl)
    return None if refresh else cached_model_ids(config, ttl)


def model_ids_for_config(
    config: ClientConfig,
    *,
    options: openai.RequestOptions,
    ttl: float = DEFAULT_CATALOG_TTL,
    refresh: bool = False,
) -> tuple[str, ...]:
    """Fetch (or reuse) the catalog through the shared sync client for ``config``.

    This is the layer under :func:`list_models`, used by ``ChatHolySheep`` so
    the catalog request goes through the model's own pool, headers and proxy.

    Args:
        config: The connection settings.
        options: Per-request options (``timeout``, ``max_retries``).
        ttl: Seconds a cached catalog stays fresh; ``0`` always fetches.
        refresh: Fetch even if a fresh catalog is cached.

    Returns:
        The model ids, in the gateway's order.

    Raises:
        HolySheepError: The request failed (translated, key masked).
    """
    if (ids := _fresh(config, ttl, refresh)) is not None:
        return ids
    ids = get_json(get_sync_client(config), _MODELS_PATH, options, _parse_catalog)
    _store(config, ids)
    return ids


async def amodel_ids_for_config(
    config: ClientConfig,
    *,
    options: openai.RequestOptions,
    ttl: float = DEFAULT_CATALOG_TTL,
    refresh: bool = False,
) -> tuple[str, ...]:
    """Async :func:`model_ids_for_config` (the running loop's shared client)."""
    if (ids := _fresh(config, ttl, refresh)) is not None:
        return ids
    client = await get_async_client(config)
    ids = await aget_json(client, _MODELS_PATH, options, _parse_catalog)
    _store(config, ids)
    return ids


def _standalone(
    api_key: str | SecretStr | None,
    base_url: str | None,
    timeout: float,
    max_retries: int,
) -> tuple[ClientConfig, openai.RequestOptions]:
    """The connection and request options of a lookup made outside any model."""
    from langchain_holysheep.errors import (  # noqa: PLC0415
        HolySheepInputError,
        HolySheepMissingAPIKeyError,
    )

    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise HolySheepMissingAPIKeyError
    try:
        url = check_base_url(
            base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        )
    except ValueError as error:
        raise HolySheepInputError(str(error)) from None
    config = ClientConfig.create(base_url=url, api_key=key)
    options: openai.RequestOptions = {
        "timeout": sdk_timeout(timeout, min(timeout, 10.0)),
        "max_retries": max_retries,
    }
    return config, options


def list_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    ttl: float = DEFAULT_CATALOG_TTL,
    refresh: bool = False,
    timeout: float = 30.0,
    max_retries: int = 2,
) -> list[str]:
    """List the model ids the gateway serves (``GET /v1/models``), cached.

    The catalog is cached per (gateway URL, API key) for ``ttl`` seconds and
    shared by every thread, every event loop and ``ChatHolySheep``'s
    ``validate_model`` check.

    Args:
        api_key: The key; defaults to ``HOLYSHEEP_API_KEY``.
        base_url: The gateway; defaults to ``HOLYSHEEP_BASE_URL``, else
            ``https://api.holysheep.ai/v1``.
        ttl: Seconds a cached catalog stays fresh; ``0`` always fetches.
        refresh: Fetch now even if a fresh catalog is cached.
        timeout: Seconds to wait for the gateway.
        max_retries: SDK retries on 408/409/429/5xx and connection errors.

    Returns:
        The model ids, in the gateway's order (a new list each call).

    Raises:
        HolySheepMissingAPIKeyError: No key given or in the environment.
        HolySheepInputError: ``base_url`` or ``ttl`` is invalid.
        HolySheepError: The request failed.

    Example:
        >>> from langchain_holysheep.catalog import list_models
        >>> "mistral-small-2603" in list_models()  # doctest: +SKIP
        True
    """
    config, options = _standalone(api_key, base_url, timeout, max_retries)
    return list(model_ids_for_config(config, options=options, ttl=ttl, refresh=refresh))


async def alist_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    ttl: float = DEFAULT_CATALOG_TTL,
    refresh: bool = False,
    timeout: float = 30.0,  # noqa: ASYNC109  (the HTTP timeout, sent to the SDK)
    max_retries: int = 2,
) -> list[str]:
    """Async :func:`list_models`: the same arguments, cache, result and errors."""
    config, options = _standalone(api_key, base_url, timeout, max_retries)
    return list(
        await amodel_ids_for_config(config, options=options, ttl=ttl, refresh=refresh)
    )


# --------------------------------------------------------------------------- #
# ChatHolySheep's checks: validate_model, and did-you-mean after a 404
# --------------------------------------------------------------------------- #


def ensure_served(
    config: ClientConfig,
    model: str,
    *,
    options: openai.RequestOptions,
    base_url: str,
) -> None:
    """Refuse a model id the catalog does not list (``validate_model=True``).

    Args:
        config: The chat model's connection settings (its pool fetches).
        model: The model id the request names.
        options: Per-request options for the catalog request.
        base_url: The gateway URL, named in the message.

    Raises:
        HolySheepModelNotFoundError: The catalog does not list ``model``; it
            carries the closest ids as ``.suggestions``.
        HolySheepError: The catalog request failed.
    """
    _require_listed(model, model_ids_for_config(config, options=options), base_url)


async def aensure_served(
    config: ClientConfig,
    model: str,
    *,
    options: openai.RequestOptions,
    base_url: str,
) -> None:
    """Async :func:`ensure_served` (the running loop's shared client)."""
    ids = await amodel_ids_for_config(config, options=options)
    _require_listed(model, ids, base_url)


def _require_listed(model: str, ids: tuple[str, ...], base_url: str) -> None:
    if model not in ids:
        raise model_not_found_error(model, ids, base_url=base_url)


def enrich_not_found(
    error: Exception,
    config: ClientConfig,
    model: str,
    *,
    timeout: float,
    connect_timeout: float,
) -> None:
    """Raise a chat 404 for an unknown model again, with the catalog's suggestions.

    Returns (so the caller re-raises ``error`` unchanged) unless ``error`` is a
    model-not-found error without suggestions, the catalog answers quickly (a
    few seconds, no retries: it only enriches an error), and it does not list
    ``model``.

    Args:
        error: What the chat request raised.
        config: The chat model's connection settings (its pool fetches).
        model: The model id the request named.
        timeout: The chat model's read timeout (capped for the catalog).
        connect_timeout: The chat model's connect timeout (capped too).

    Raises:
        HolySheepModelNotFoundError: The enriched error, ``from`` ``error``.
    """
    from langchain_holysheep.errors import HolySheepError  # noqa: PLC0415

    if (original := _without_suggestions(error)) is None:
        return
    options = _quick_options(timeout, connect_timeout)
    try:
        ids = model_ids_for_config(config, options=options)
    except HolySheepError:  # no catalog at hand: the gateway's error stands
        return
    _raise_with_suggestions(original, model, ids)


async def aenrich_not_found(
    error: Exception,
    config: ClientConfig,
    model: str,
    *,
    timeout: float,  # noqa: ASYNC109  (the chat model's HTTP timeout, capped)
    connect_timeout: float,
) -> None:
    """Async :func:`enrich_not_found` (the running loop's shared client)."""
    from langchain_holysheep.errors import HolySheepError  # noqa: PLC0415

    if (original := _without_suggestions(error)) is None:
        return
    options = _quick_options(timeout, connect_timeout)
    try:
        ids = await amodel_ids_for_config(config, options=options)
    except HolySheepError:  # no catalog at hand: the gateway's error stands
        return
    _raise_with_suggestions(original, model, ids)


def _without_suggestions(error: Exception) -> HolySheepModelNotFoundError | None:
    """``error`` if it is a model-not-found error the catalog could enrich."""
    from langchain_holysheep.errors import (  # noqa: PLC0415
        HolySheepModelNotFoundError,
    )

    if isinstance(error, HolySheepModelNotFoundError) and not error.suggestions:
        return error
    return None


def _quick_options(timeout: float, connect_timeout: float) -> openai.RequestOptions:
    """Options for a catalog request that only enriches an error: fast or not at all."""
    return {
        "timeout": sdk_timeout(
            min(timeout, _QUICK_CATALOG_TIMEOUT),
            min(connect_timeout, _QUICK_CATALOG_TIMEOUT),
        ),
        "max_retries": 0,
    }


def _raise_with_suggestions(
    original: HolySheepModelNotFoundError, model: str, ids: tuple[str, ...]
) -> None:
    if model not in ids:
        raise model_not_found_error(model, ids, original) from original
