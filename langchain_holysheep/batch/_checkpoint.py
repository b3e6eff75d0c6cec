"""The output file is the checkpoint: what it holds is done, the rest is sent.

:func:`read_done` reads the ``custom_id`` of every line a run wrote (success and
error lines alike count as done: delete an error line to send it again).
:class:`OutputWriter` appends each line with one unbuffered write, so a run
killed at any moment leaves at most its last line torn; :func:`read_done` cuts
that line off (with one warning) before the next run appends.

A last line that is a whole result and lacks only its newline (the run was
killed between the two, or an editor dropped it) is kept and given its newline:
cutting it would pay for that answer twice.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from langchain_holysheep.batch._format import BatchInputError, line_status

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Checkpoint", "OutputWriter", "read_checkpoint", "read_done"]

logger = logging.getLogger(__name__)

_OPEN_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What an output file already holds.

    Attributes:
        done: The ids of every success and error line (none is sent again).
        failed: The ids among them whose last line is an error line.
    """

    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)


def _status(raw: bytes) -> tuple[str, bool] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return line_status(text)


def read_done(output_path: str | os.PathLike[str]) -> set[str]:
    """The ``custom_id`` values the output file already answers.

    A torn last line (not a whole JSON object with a ``custom_id``) is cut off
    the file, truncating it after the last whole line, with one warning; its
    request is then sent again.

    Args:
        output_path: The output JSONL file (a missing file answers nothing).

    Returns:
        The ids of every success and error line.

    Raises:
        BatchInputError: The file cannot be read or cut, or a line before the
            last is not a result line (the file is not a batch output).
    """
    return read_checkpoint(output_path).done


def read_checkpoint(output_path: str | os.PathLike[str]) -> Checkpoint:
    """The output file's done and failed ids (:func:`read_done`, with the errors).

    Args:
        output_path: The output JSONL file (a missing file answers nothing).

    Returns:
        The ids of every line, and of the error lines apart (a run over an
        output holding error lines has not answered every line).

    Raises:
        BatchInputError: As :func:`read_done`.
    """
    path = Path(output_path)
    shown = os.fspath(output_path)
    try:
        file = path.open("r+b")
    except FileNotFoundError:
        return Checkpoint()
    except OSError as error:
        raise BatchInputError(
            f"cannot open the output to resume from it ({error.strerror}): check "
            "its permissions, or give another --output",
            path=shown,
        ) from None
    done: set[str] = set()
    failed: set[str] = set()
    with file:
        good_end = 0
        bad: tuple[int, bytes] | None = None
        for line_no, raw in enumerate(file, start=1):
            if bad is not None:
                raise BatchInputError(
                    "not a result line (not a whole JSON object with a custom_id): "
                    "the file is not an output of holysheep batch, or was edited; "
                    "fix or delete the line, or give another --output",
                    line_no=bad[0],
                    path=shown,
                )
            whole = raw.endswith(b"\n")
            if whole and not raw.strip():
                good_end += len(raw)
                continue
            status = _status(raw)
            if status is None:
                bad = (line_no, raw)
                continue
            custom_id, ok = status
            done.add(custom_id)
            if ok:
                failed.discard(custom_id)
            else:
                failed.add(custom_id)
            good_end += len(raw)
            if not whole:  # the last line: nothing follows it
                file.seek(0, os.SEEK_END)
                file.write(b"\n")
                logger.warning(
                    "%s:%d: the last line had no newline at its end; added it "
                    "(the line is a whole result, kept as done)",
                    shown,
                    line_no,
                )
        if bad is not None:
            line_no, raw = bad
            file.truncate(good_end)
            logger.warning(
                "%s:%d: cut a torn last line (%d bytes, %s) an interrupted run "
                "left; its request will be sent again",
                shown,
                line_no,
                len(raw),
                "not a whole JSON object"
                if raw.endswith(b"\n")
                else "no newline at its end",
            )
    return Checkpoint(done, failed)


class OutputWriter:
    """Appends whole lines to the output file, each with one write.

    The file is opened for appending (created when missing) without a buffer:
    every :meth:`write` is on disk's page cache when it returns, so a killed
    run loses nothing it reported written.

    Example:
        >>> with OutputWriter("out.jsonl") as writer:  # doctest: +SKIP
        ...     writer.write(line)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open the file for appending.

        Args:
            path: The output JSONL file.
        """
        self._path = os.fspath(path)
        self._fd: int | None = os.open(path, _OPEN_FLAGS, 0o666)

    @property
    def path(self) -> str:
        """The output file's path."""
        return self._path

    def write(self, line: str) -> None:
        """Append one line.

        Args:
            line: One output line and its newline (and no other newline).

        Raises:
            ValueError: The writer is closed, or ``line`` is not one line.
        """
        if self._fd is None:
            msg = f"the output writer for {self._path!r} is closed"
            raise ValueError(msg)
        if not line.endswith("\n") or "\n" in line[:-1]:
            msg = "write() takes one line ending with its newline"
            raise ValueError(msg)
        data = memoryview(line.encode("utf-8"))
        # One write in practice; a short write (rare: a full disk, a signal)
        # goes on with the rest.
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def close(self) -> None:
        """Close the file (a second close does nothing)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> Self:
        """The writer itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the file."""
        self.close()
