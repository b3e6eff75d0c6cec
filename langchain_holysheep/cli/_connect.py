"""Connecting: the real gateway, ``--base-url``, or the built-in offline one.

:func:`connect` picks offline when ``--offline`` is given or
``HOLYSHEEP_API_KEY`` is not set (and says so on stderr), else the live
gateway. Offline, :func:`offline_responder` answers like a model would, from
the canned texts in :mod:`langchain_holysheep.cli._demo_data`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TextIO

from langchain_holysheep.chat_models import DEFAULT_BASE_URL, DEFAULT_MODEL
from langchain_holysheep.cli._demo_data import OFFLINE_ANSWERS
from langchain_holysheep.cli._errors import PROG, CLIError
from langchain_holysheep.cli._output import one_line

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

    from langchain_holysheep.chat_models import ChatHolySheep
    from langchain_holysheep.testing import OfflineGateway, Reply

__all__ = ["Connection", "connect", "offline_responder", "prompt_text"]

_OFFLINE_KEY: Final = "cr_offline_demo_key"


@dataclass
class Connection:
    """Where the commands send requests.

    Attributes:
        base_url: The gateway URL.
        api_key: The key (never printed).
        offline: Whether this is the built-in offline gateway.
        gateway: The offline gateway, when offline (scriptable by demo steps).
        timeout: Read timeout per request, in seconds.
    """

    base_url: str
    api_key: str = field(repr=False)
    offline: bool
    gateway: OfflineGateway | None = None
    timeout: float = 60.0

    @property
    def shown_url(self) -> str:
        """The gateway URL as output may show it (credentials masked)."""
        from langchain_holysheep._secrets import mask_url  # noqa: PLC0415

        return mask_url(self.base_url)

    def chat_model(self, model: str = DEFAULT_MODEL, **kwargs: Any) -> ChatHolySheep:
        """A ``ChatHolySheep`` pointed at this gateway.

        Args:
            model: The model id.
            **kwargs: Other ``ChatHolySheep`` fields.

        Returns:
            The model.

        Raises:
            CLIError: A field value is invalid.
        """
        from langchain_holysheep.chat_models import ChatHolySheep  # noqa: PLC0415

        try:
            return ChatHolySheep(
                model=model,
                base_url=self.base_url,
                api_key=self.api_key,
                timeout=self.timeout,
                **kwargs,
            )
        except ValueError as error:  # pydantic's ValidationError
            raise CLIError(_validation_message(error)) from None


def _validation_message(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        details = errors()
        if details:
            first = details[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            message = str(first.get("msg", error)).removeprefix("Value error, ")
            return f"{where}: {message}" if where else message
    return one_line(str(error))


@contextlib.contextmanager
def connect(args: argparse.Namespace, err: TextIO) -> Iterator[Connection]:
    """Connect to the gateway the arguments and environment choose.

    Offline (``--offline``, or no ``HOLYSHEEP_API_KEY``) a built-in
    :class:`~langchain_holysheep.testing.OfflineGateway` runs for the block, and
    a line on ``err`` says so; otherwise ``--base-url``, ``HOLYSHEEP_BASE_URL``
    or the default gateway is used with the key from the environment.

    Args:
        args: The parsed arguments (``offline``, ``base_url``, ``timeout``).
        err: Where the offline notice goes.

    Yields:
        The connection.

    Raises:
        CLIError: ``--offline`` with ``--base-url``, or ``--base-url`` without
            a key.
    """
    key = os.environ.get("HOLYSHEEP_API_KEY", "").strip()
    if args.offline and args.base_url:
        raise CLIError("--offline and --base-url cannot be combined; pick one")
    if not args.offline and not key and args.base_url:
        raise CLIError(
            "--base-url needs HOLYSHEEP_API_KEY; set it, or drop --base-url to "
            "run offline"
        )
    if args.offline or not key:
        reason = "--offline" if args.offline else "HOLYSHEEP_API_KEY is not set"
        err.write(
            f"{PROG}: OFFLINE ({reason}): using the built-in offline gateway; "
            "replies are scripted, not from a real model.\n"
        )
        from langchain_holysheep.testing import OfflineGateway  # noqa: PLC0415

        # strict_models: a wrong model id fails offline as it does online.
        with OfflineGateway(strict_models=True) as gateway:
            gateway.set_responder(offline_responder())
            yield Connection(
                base_url=gateway.base_url,
                api_key=_OFFLINE_KEY,
                offline=True,
                gateway=gateway,
                timeout=args.timeout,
            )
        return
    base_url = args.base_url or os.environ.get("HOLYSHEEP_BASE_URL") or DEFAULT_BASE_URL
    yield Connection(
        base_url=base_url, api_key=key, offline=False, timeout=args.timeout
    )


def prompt_text(body: dict[str, Any]) -> str:
    """The text of a chat request's last user message (``""`` when none).

    Args:
        body: The request body the offline gateway received.

    Returns:
        The prompt, as the offline gateway's own replies read it.
    """
    from langchain_holysheep.testing._replies import last_user_text  # noqa: PLC0415

    return last_user_text(body.get("messages") or [])


def offline_responder() -> Callable[[dict[str, Any]], Reply]:
    """The offline gateway's responder for the commands' chat requests.

    Returns:
        A responder that answers like a model would: a text fitting the prompt
        (from ``OFFLINE_ANSWERS``), a short wait, a steady stream.
    """
    from langchain_holysheep.testing import Reply  # noqa: PLC0415

    counter = itertools.count()

    def respond(body: dict[str, Any]) -> Reply:
        prompt = prompt_text(body).lower()
        answer = next(
            text
            for words, text in OFFLINE_ANSWERS
            if not words or any(w in prompt for w in words)
        )
        # Deterministic jitter so latency percentiles differ like real ones.
        spread = (zlib.crc32(prompt.encode()) + 7 * next(counter)) % 13
        return Reply(
            content=answer,
            delay_before_headers=0.03 + spread * 0.005,
            chunk_delay=0.01,
        )

    return respond
