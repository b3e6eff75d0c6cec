"""The ``holysheep`` command's name, exit statuses and :class:`CLIError`."""

from __future__ import annotations

from typing import Final

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_REQUEST_FAILED",
    "EXIT_USAGE",
    "PROG",
    "CLIError",
]

PROG: Final = "holysheep"
"""The command's name, as messages start with it."""
EXIT_REQUEST_FAILED: Final = 1
"""Exit status when a request fails."""
EXIT_USAGE: Final = 2
"""Exit status for bad arguments."""
EXIT_INTERRUPTED: Final = 130
"""Exit status on Ctrl-C."""


class CLIError(Exception):
    """A problem the user can fix, reported as one line with an exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        """Create the error.

        Args:
            message: What is wrong and what to do, on one line.
            status: The process exit status.
        """
        super().__init__(message)
        self.status = status
