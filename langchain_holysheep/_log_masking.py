"""Credentials masked out of the SDK's and the HTTP stack's log records.

At ``DEBUG`` (and ``INFO`` for ``httpx2``) the ``openai`` SDK, ``httpx2`` and
``httpcore2`` log request lines with the full URL (userinfo and query
included) and the response headers (``Set-Cookie``). :func:`protect` puts one
:class:`CredentialFilter` on each of their loggers: their records keep their
level, logger and text, with every credential masked by
:func:`langchain_holysheep._secrets.mask_text`; nothing is silenced.

A logger's filters see only the records logged to that very logger (not its
children's), so the filter goes on every logger of those libraries, found by
name each time a new client is built; a record is only filtered when its level
is enabled, so the hot path pays nothing while logging is off.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Final

from langchain_holysheep._secrets import mask_text

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CredentialFilter", "protect"]

_PACKAGES: Final = frozenset(
    {"openai", "httpx", "httpx2", "httpcore", "httpcore2", "h11", "h2"}
)
# Created by those libraries at import; listed so they are filtered even if a
# module that logs is imported after the first client is built.
_KNOWN: Final = (
    "openai",
    "openai._base_client",
    "openai._response",
    "openai._legacy_response",
    "httpx",
    "httpx2",
    *(
        f"{package}.{part}"
        for package in ("httpcore", "httpcore2")
        for part in (
            "connection",
            "http11",
            "http2",
            "proxy",
            "socks",
            "connection_pool",
        )
    ),
)


class CredentialFilter(logging.Filter):
    """Masks the credentials of every client built so far in a log record.

    The message is rendered, masked and stored back (``args`` cleared) only
    when masking changed it; so are a logged exception's text and stack.
    """

    def __init__(self) -> None:
        """Create the filter, knowing no credential values yet."""
        super().__init__()
        self._values: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def remember(self, values: Iterable[str]) -> None:
        """Mask these exact values too, from now on.

        Args:
            values: Credentials (see ``_secrets.credential_values``).
        """
        with self._lock:
            merged = set(self._values) | set(values)
            self._values = tuple(sorted(merged, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask ``record`` in place; always let it through.

        Args:
            record: The record being logged.

        Returns:
            ``True``: the record is logged (masked), never dropped.
        """
        with contextlib.suppress(Exception):  # logging must never fail a call
            self._mask(record)
        return True

    def _mask(self, record: logging.LogRecord) -> None:
        values = self._values
        message = record.getMessage()
        masked = mask_text(message, values)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if (masked_text := mask_text(text, values)) != text:
                record.exc_text, record.exc_info = masked_text, None
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text, values)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info, values)


_FILTER: Final = CredentialFilter()


def protect(values: Iterable[str]) -> None:
    """Mask ``values`` (and every URL's credentials) in those libraries' logs.

    Called when a client is built; cheap enough to repeat, and each call also
    reaches loggers those libraries created since the last one.

    Args:
        values: The credentials of the client being built.
    """
    _FILTER.remember(values)
    names = {
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".", 1)[0] in _PACKAGES
    }
    for name in {*_KNOWN, *names}:
        logging.getLogger(name).addFilter(_FILTER)
