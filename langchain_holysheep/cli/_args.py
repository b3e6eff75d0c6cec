"""Argument types shared by the ``holysheep`` commands (argparse ``type=`` callables).

Each turns one command-line word into a value or raises
:class:`argparse.ArgumentTypeError` with a message that says what was expected,
which argparse prints after the option's name.
"""

from __future__ import annotations

import argparse

__all__ = ["count", "positive_int", "whole_number"]


def whole_number(text: str, *, minimum: int) -> int:
    """A whole number no smaller than ``minimum``.

    Args:
        text: The word given on the command line.
        minimum: The smallest value accepted.

    Returns:
        The number.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not a whole number, or is below
            ``minimum``.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < minimum:
        bound = (
            "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        )
        raise argparse.ArgumentTypeError(f"{bound}, got {value}")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (a count of requests, workers, tokens)."""
    return whole_number(text, minimum=1)


def count(text: str) -> int:
    """A whole number of at least 0 (retries, tokens per request)."""
    return whole_number(text, minimum=0)
