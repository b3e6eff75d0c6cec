"""The deadline of one call (``total_timeout``), where the I/O below it can see it.

A chat call with a ``total_timeout`` creates a :class:`Deadline`. For each step
of the call (sending the request with the SDK's retries, waiting for each stream
event) it is made the context's current deadline with :func:`within`, and:

* the connections ``_transport`` builds cap every socket wait (connect, write,
  read) at the time left, and fail as a transport timeout when none is left;
* the SDK clients ``_transport`` builds never sleep before a retry that could
  not start before the deadline: the call ends at once instead;
* ``_http`` checks it before waiting for each stream event, which also bounds a
  stream read through a user's own ``http_client`` (whose sockets are not ours).

The deadline is set per step and reset before anything is yielded, so code that
consumes a stream never inherits it. Standard library only; no I/O.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from time import monotonic
from typing import TYPE_CHECKING, Final, Self

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Token
    from types import TracebackType

__all__ = ["Deadline", "current", "within"]

_CURRENT: ContextVar[Deadline | None] = ContextVar("holysheep_deadline", default=None)


class Deadline:
    """The moment a call must be over by, ``seconds`` after it started."""

    __slots__ = ("_tripped", "at", "seconds")

    def __init__(self, seconds: float) -> None:
        """Start the clock now.

        Args:
            seconds: The call's ``total_timeout``.
        """
        self.seconds = seconds
        self.at = monotonic() + seconds
        self._tripped = False

    def __repr__(self) -> str:
        """The bound and the time left."""
        return f"Deadline(seconds={self.seconds}, left={self.left():.3f})"

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.at - monotonic()

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed, or a step gave up on it early."""
        return self._tripped or monotonic() >= self.at

    def trip(self) -> None:
        """Mark the deadline as reached: what is left cannot finish in time."""
        self._tripped = True


current: Final[Callable[[], Deadline | None]] = _CURRENT.get
"""The deadline of the step running in this context, if any.

The context variable's own ``get``: the transport asks on every socket
operation, so no Python frame sits in between.
"""


_NO_DEADLINE: Final = nullcontext()


def within(deadline: Deadline | None) -> AbstractContextManager[object]:
    """Make ``deadline`` the current one for a ``with`` block.

    Args:
        deadline: The call's deadline, or ``None`` for a call without one (a
            shared no-op: the usual case costs nothing to build).

    Returns:
        The context manager.
    """
    return _NO_DEADLINE if deadline is None else _Within(deadline)


class _Within:
    """Sets a deadline for a ``with`` block, and restores the previous one."""

    __slots__ = ("_deadline", "_token")

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._token: Token[Deadline | None] | None = None

    def __enter__(self) -> Self:
        """Set the deadline."""
        self._token = _CURRENT.set(self._deadline)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Restore the previous deadline."""
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None
