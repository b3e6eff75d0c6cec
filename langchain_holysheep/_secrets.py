"""What counts as a credential, and how each kind is masked: the one rule.

A credential is:

* the user and password of a URL's userinfo (``https://user:password@relay/v1``,
  ``redis://:password@cache:6379/0``: any scheme);
* a header named ``Authorization``, ``Proxy-Authorization``, ``Cookie`` or
  ``Set-Cookie``, or whose name contains ``key``, ``token``, ``secret``,
  ``auth``, ``signature`` or ``password`` (any case, any separator:
  ``X-Api-Key``, ``x_api_key``, ``Helicone-Auth``, ``cf-aig-authorization``);
* a query parameter whose name contains one of those words, or is ``sig``;
* anything shaped like an API key (``cr_...``, ``sk-...``) and the token of a
  ``Bearer``/``Basic`` authorization, wherever it appears in text.

Every other header and parameter stays readable (``X-Request-Source`` shows).
Masked values read ``***`` (:data:`MASK`); such a placeholder is refused as a
real value (:func:`placeholder_slot`), so a masked copy is never sent.

Everything here is a pure function. Text is masked by exact value (the
configured credentials, from :func:`credential_values`) and by shape (URLs,
bearer tokens, key patterns), so a value is caught even when a library quotes
it in its own words. ``dumps`` stores credentials as references to environment
variables (:func:`secret_id`), restored by :func:`restore_credentials`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Final
from urllib.parse import (
    quote,
    quote_plus,
    unquote,
    unquote_plus,
    urlsplit,
    urlunsplit,
)

__all__ = [
    "MASK",
    "credential_values",
    "is_credential_header",
    "is_credential_param",
    "mask_headers",
    "mask_input",
    "mask_query",
    "mask_settings",
    "mask_text",
    "mask_url",
    "placeholder_slot",
    "restore_credentials",
    "secret_id",
    "serialize_credentials",
    "serialized_secret_fields",
    "url_has_credentials",
]

MASK: Final = "***"
"""What a masked credential reads."""

_HEADER_NAMES: Final = frozenset({"cookie", "setcookie"})  # besides the words
# Rate-limit headers count tokens, they carry none (``x-ratelimit-reset-tokens``).
_NOT_CREDENTIAL_HEADERS: Final = ("xratelimit",)
_PARAM_NAMES: Final = frozenset({"sig"})  # besides the words
_WORDS: Final = ("key", "token", "secret", "auth", "signature", "password")
# Shorter values are masked where they stand (a URL, a header), not by value in
# free text, where they would blank out ordinary words.
_MIN_VALUE_LENGTH: Final = 4
# Keys look like ``cr_…`` (HolySheep) or ``sk-…`` (OpenAI and most relays).
_KEY_PATTERN: Final = re.compile(r"\b(?:cr|sk)[-_][A-Za-z0-9_\-]{6,}")
_AUTH_TOKEN: Final = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}")
_URL_IN_TEXT: Final = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>\\`]+")
_TRAILING: Final = ".,;:!?)]}'\""  # punctuation after a URL in a sentence
_NOT_ENV: Final = re.compile(r"[^A-Z0-9]+")
_SECRET_PREFIX: Final = {"default_headers": "HEADER", "default_query": "QUERY"}


def _normalised(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


@lru_cache(maxsize=512)
def is_credential_header(name: str) -> bool:
    """Whether a header of this name carries a credential.

    Args:
        name: The header name, in any case, with any separators.

    Returns:
        True for ``Authorization``, ``Proxy-Authorization``, ``Cookie``,
        ``Set-Cookie`` and names containing a credential word (but not the
        ``x-ratelimit-*`` headers, which count tokens).
    """
    flat = _normalised(name)
    if flat.startswith(_NOT_CREDENTIAL_HEADERS):
        return False
    return flat in _HEADER_NAMES or any(word in flat for word in _WORDS)


@lru_cache(maxsize=512)
def is_credential_param(name: str) -> bool:
    """Whether a query parameter of this name carries a credential.

    Args:
        name: The parameter name, in any case, with any separators.

    Returns:
        True for ``sig`` and names containing a credential word.
    """
    flat = _normalised(name)
    return flat in _PARAM_NAMES or any(word in flat for word in _WORDS)


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``headers`` with every credential's value masked.

    Args:
        headers: Header names to values.

    Returns:
        The same names; credential values read ``***``.
    """
    return {k: MASK if is_credential_header(k) else v for k, v in headers.items()}


def mask_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``query`` with every credential's value masked.

    Args:
        query: Query parameter names to values.

    Returns:
        The same names; credential values read ``***``.
    """
    return {k: MASK if is_credential_param(k) else v for k, v in query.items()}


def _mask_pairs(text: str) -> str:
    """Mask credential values in a query string (or fragment), keeping the rest."""
    if "=" not in text:
        return text
    pieces = []
    for piece in text.split("&"):
        name, equals, value = piece.partition("=")
        masked = equals and value and is_credential_param(unquote_plus(name))
        pieces.append(f"{name}={MASK}" if masked else piece)
    return "&".join(pieces)


@lru_cache(maxsize=256)
def mask_url(url: str) -> str:
    """``url`` with its userinfo and credential query parameters masked.

    Works for any scheme (``https``, ``redis``, ``postgres``...); the rest of
    the URL is kept exactly as written.

    Args:
        url: A URL.

    Returns:
        For example ``https://***:***@relay.example/v1?sig=***&v=2``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL we can read: hide what may be userinfo
        return re.sub(r"//[^/@]*@", f"//{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{MASK}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query, fragment = _mask_pairs(parts.query), _mask_pairs(parts.fragment)
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def mask_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of connection settings (model kwargs) with credentials masked.

    Args:
        settings: Keyword arguments such as ``base_url``, ``default_headers``
            and ``default_query`` among others (an ``api_key`` is masked whole).

    Returns:
        The same keys; credentials in those values read ``***``.
    """
    masked = dict(settings)
    if isinstance(url := masked.get("base_url"), str):
        masked["base_url"] = mask_url(url)
    if isinstance(headers := masked.get("default_headers"), Mapping):
        masked["default_headers"] = mask_headers(headers)
    if isinstance(query := masked.get("default_query"), Mapping):
        masked["default_query"] = mask_query(query)
    if isinstance(masked.get("api_key"), str):
        masked["api_key"] = MASK
    return masked


def mask_input(loc: tuple[int | str, ...], value: Any) -> Any:
    """A validation error's input (``errors()[i]["input"]``), credentials masked.

    Args:
        loc: Where the error is (``("default_headers", "X-Api-Key")``,
            ``("base_url",)``, ``()`` for the whole input).
        value: The input there.

    Returns:
        ``***`` for a credential, the masked URL, headers or settings, or the
        value itself when it holds no credential.
    """
    names = [part for part in loc if isinstance(part, str)]
    field = names[0] if names else None
    if field == "api_key":
        return MASK
    if field in _SECRET_PREFIX and len(names) > 1:
        check = (
            is_credential_header if field == "default_headers" else is_credential_param
        )
        return MASK if check(names[1]) else value
    if isinstance(value, str):
        return mask_text(value)
    if not isinstance(value, Mapping):
        return value
    if field in _SECRET_PREFIX:  # the whole headers or query mapping
        return mask_settings({field: value})[field]
    masked = mask_settings(value)
    if isinstance(settings := masked.get("settings"), Mapping):
        masked["settings"] = mask_settings(settings)
    return masked


def url_has_credentials(url: str) -> bool:
    """Whether ``url`` carries userinfo or a credential query parameter.

    Args:
        url: A URL.

    Returns:
        True when :func:`mask_url` would change it.
    """
    return mask_url(url) != url


def mask_text(text: str, values: Iterable[str] = ()) -> str:
    """``text`` with every credential in it masked.

    Masks, in order: each of ``values`` (longest first), the userinfo and
    credential parameters of every URL, the token after ``Bearer``/``Basic``,
    and anything shaped like an API key (``cr_…``/``sk-…`` keep their prefix).

    Args:
        text: Any text: an error message, a body, a log line.
        values: The exact credentials in use (see :func:`credential_values`).

    Returns:
        The masked text.
    """
    for value in values:
        if value and value in text:
            text = text.replace(value, MASK)
    if "://" in text:
        text = _URL_IN_TEXT.sub(_mask_url_match, text)
    if "Bearer" in text or "Basic" in text:
        text = _AUTH_TOKEN.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _KEY_PATTERN.sub(lambda m: m.group(0)[:3] + MASK, text)


def _mask_url_match(match: re.Match[str]) -> str:
    """Mask a URL found in text, keeping punctuation that follows it as it is."""
    url = match.group(0)
    bare = url.rstrip(_TRAILING)
    return mask_url(bare) + url[len(bare) :]


def _forms(value: str) -> set[str]:
    """A value as written, decoded and percent-encoded (URLs carry either)."""
    return {value, unquote(value), quote(value, safe=""), quote_plus(value, safe="")}


def credential_values(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
    query: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
) -> tuple[str, ...]:
    """The exact credential strings of one connection, to mask in any text.

    Includes the forms they travel in: percent-encoded and decoded userinfo,
    the ``Basic`` token HTTP makes of it, a bearer header's token alone.
    Values shorter than four characters are left out (they are masked where
    they stand, in URLs and headers, but not everywhere in free text).

    Args:
        api_key: The API key.
        base_url: The gateway URL (its userinfo and credential parameters).
        headers: Extra headers (their credential values).
        query: Extra query parameters (their credential values).

    Returns:
        The values, longest first (so a value inside another is masked whole).
    """
    found: set[str] = {api_key} if api_key else set()
    if base_url:
        found |= _url_values(base_url)
    header_items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in header_items:
        if isinstance(value, str) and value and is_credential_header(name):
            found.add(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.isalpha():
                found.add(token.strip())
    query_items = query.items() if isinstance(query, Mapping) else query
    for name, value in query_items:
        if value is not None and is_credential_param(name):
            found |= _forms(str(value))
    kept = (v for v in found if len(v) >= _MIN_VALUE_LENGTH and v != MASK)
    return tuple(sorted(kept, key=len, reverse=True))


def _url_values(url: str) -> set[str]:
    """A URL's userinfo (and its ``Basic`` token) and credential parameters."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return set()
    found: set[str] = set()
    for part in (user, password):
        if part:
            found |= _forms(part)
    if user or password:
        pair = f"{unquote(user or '')}:{unquote(password or '')}".encode()
        found.add(base64.b64encode(pair).decode())
    for piece in f"{parts.query}&{parts.fragment}".split("&"):
        name, _, value = piece.partition("=")
        if value and is_credential_param(unquote_plus(name)):
            found |= _forms(value) | _forms(unquote_plus(value))
    return found


# ----------------------------------------------------------------- placeholders
def _is_placeholder(value: object) -> bool:
    return isinstance(value, str) and bool(value) and set(unquote(value)) == {"*"}


def placeholder_slot(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    headers: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> str | None:
    """Name the credential slot that holds a masked placeholder, if any.

    A value of only ``*`` (what ``repr``, ``dumps`` and logs show) is never a
    real credential: sending it would fail at the gateway with a confusing 401.

    Args:
        api_key: The API key.
        base_url: The gateway URL.
        headers: Extra headers.
        query: Extra query parameters.

    Returns:
        For example ``"default_headers['X-Api-Key']"``, or ``None``.
    """
    if _is_placeholder(api_key):
        return "api_key"
    if base_url:
        try:
            parts = urlsplit(base_url)
            userinfo = (parts.username, parts.password)
        except ValueError:
            userinfo = (None, None)
        if any(_is_placeholder(part) for part in userinfo):
            return "the userinfo (user:password@) of base_url"
        for piece in parts.query.split("&"):
            name, _, value = piece.partition("=")
            if _is_placeholder(value) and is_credential_param(unquote_plus(name)):
                return f"the {unquote_plus(name)!r} parameter of base_url"
    for field, items, check in (
        ("default_headers", headers, is_credential_header),
        ("default_query", query, is_credential_param),
    ):
        for name, value in (items or {}).items():
            if check(name) and _is_placeholder(value):
                return f"{field}[{name!r}]"
    return None


# ---------------------------------------------------------------- serialization
def secret_id(field: str, name: str = "") -> str:
    """The environment variable a serialized credential refers to.

    Args:
        field: ``"base_url"``, ``"default_headers"`` or ``"default_query"``.
        name: The header or parameter name (for the last two).

    Returns:
        ``HOLYSHEEP_BASE_URL``, ``HOLYSHEEP_HEADER_<NAME>`` or
        ``HOLYSHEEP_QUERY_<NAME>`` (upper case, separators as ``_``), for
        example ``HOLYSHEEP_HEADER_HELICONE_AUTH``.
    """
    if field == "base_url":
        return "HOLYSHEEP_BASE_URL"
    suffix = _NOT_ENV.sub("_", name.upper()).strip("_")
    return f"HOLYSHEEP_{_SECRET_PREFIX[field]}_{suffix}"


def _marker(identifier: str) -> dict[str, Any]:
    return {"lc": 1, "type": "secret", "id": [identifier]}


def serialized_secret_fields(
    base_url: str | None,
    headers: Mapping[str, Any] | None,
    query: Mapping[str, Any] | None,
) -> dict[str, str]:
    """The connection fields ``dumpd`` must treat as secrets (``lc_secrets``).

    Args:
        base_url: The gateway URL.
        headers: Extra headers.
        query: Extra query parameters.

    Returns:
        Field name to secret id, for the fields that hold a credential.
    """
    fields: dict[str, str] = {}
    if base_url and url_has_credentials(base_url):
        fields["base_url"] = secret_id("base_url")
    if headers and any(is_credential_header(k) for k in headers):
        fields["default_headers"] = secret_id("default_headers", "*")
    if query and any(is_credential_param(k) for k in query):
        fields["default_query"] = secret_id("default_query", "*")
    return fields


def serialize_credentials(
    kwargs: dict[str, Any],
    base_url: str | None,
    headers: Mapping[str, Any] | None,
    query: Mapping[str, Any] | None,
) -> None:
    """Replace credentials in serialized constructor ``kwargs`` by secret markers.

    ``base_url`` with userinfo becomes a reference to ``HOLYSHEEP_BASE_URL``;
    each credential header and parameter a reference of its own (see
    :func:`secret_id`); other headers and parameters stay as they are (query
    values as the text the wire carries).

    Args:
        kwargs: The ``kwargs`` of a ``to_json()`` constructor; changed in place.
        base_url: The real gateway URL.
        headers: The real extra headers.
        query: The real extra query parameters.
    """
    if base_url and url_has_credentials(base_url):
        kwargs["base_url"] = _marker(secret_id("base_url"))
    for field, items, check in (
        ("default_headers", headers, is_credential_header),
        ("default_query", query, is_credential_param),
    ):
        if not items or not any(check(k) for k in items):
            continue
        kwargs[field] = {
            name: _marker(secret_id(field, name))
            if check(name)
            else (value if isinstance(value, str | int | float | bool) else str(value))
            for name, value in items.items()
        }


def restore_credentials(
    values: dict[str, Any], environ: Mapping[str, str], owner: str
) -> dict[str, Any]:
    """Fill credentials a ``load`` could not restore from the environment.

    ``langchain_core.load`` turns a secret reference into its value from
    ``secrets_map`` (or the environment with ``secrets_from_env=True``), else
    ``None``. A ``None`` credential is read here from its environment variable.

    Args:
        values: Constructor arguments (not changed).
        environ: The environment (``os.environ``).
        owner: The class name, for the message.

    Returns:
        The arguments with every ``None`` credential filled.

    Raises:
        ValueError: A credential is in neither place; the message names the
            variable to set (or the ``secrets_map`` key to pass).
    """
    restored = dict(values)
    if "base_url" in values and values["base_url"] is None:
        restored["base_url"] = _lookup(
            environ, secret_id("base_url"), "base_url", owner
        )
    for field, check in (
        ("default_headers", is_credential_header),
        ("default_query", is_credential_param),
    ):
        items = values.get(field)
        if isinstance(items, Mapping) and any(v is None for v in items.values()):
            restored[field] = {
                name: _lookup(
                    environ, secret_id(field, name), f"{field}[{name!r}]", owner
                )
                if value is None and check(name)
                else value
                for name, value in items.items()
            }
    return restored


def _lookup(environ: Mapping[str, str], identifier: str, slot: str, owner: str) -> str:
    if value := environ.get(identifier):
        return value
    msg = (
        f"{owner}: {slot} is a credential, serialized as a reference to "
        f"{identifier}, and it was not restored. Pass "
        f"secrets_map={{{identifier!r}: ...}} to langchain_core.load.load/loads, "
        f"or set the environment variable {identifier}."
    )
    raise ValueError(msg)
