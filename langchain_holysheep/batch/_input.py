"""Reading a batch input file: the path checks, a validating pass, the requests.

The file is read line by line, never whole, so a file of millions of lines runs
in bounded memory: :func:`validate_input` keeps only an 8-byte ``blake2b``
digest per ``custom_id`` to find duplicates (when two digests match, the file
is read again to tell a real duplicate from a digest collision and to name the
line that used the id first). :func:`iter_requests` is the second pass that
feeds the run. Line numbers count every line, blank ones included (those are
skipped); a UTF-8 byte order mark at the start of the file is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

from langchain_holysheep.batch._format import BatchInputError, parse_line

if TYPE_CHECKING:
    from collections.abc import Container, Generator, Iterator

    from langchain_holysheep.batch._types import BatchRequest

__all__ = ["check_paths", "iter_requests", "validate_input"]

_BOM: Final = "\ufeff"
_DIGEST_SIZE: Final = 8


def check_paths(
    input_path: str | os.PathLike[str], output_path: str | os.PathLike[str]
) -> None:
    """Refuse paths a run cannot use, before anything is read or sent.

    Args:
        input_path: The input JSONL file.
        output_path: The output JSONL file (it need not exist yet).

    Raises:
        BatchInputError: The input is missing, not a file or unreadable; the
            output is the input, a directory, or not writable; or the output's
            directory does not exist or is not writable.
    """
    source = Path(input_path)
    shown_in = os.fspath(input_path)
    if not source.exists():
        raise BatchInputError(
            "the input file does not exist: check the path", path=shown_in
        )
    if not source.is_file():
        raise BatchInputError(
            "the input is not a file: give a JSONL file, one request per line",
            path=shown_in,
        )
    try:
        with source.open("rb"):
            pass
    except OSError as error:
        raise BatchInputError(
            f"cannot read the input ({error.strerror}): check its permissions",
            path=shown_in,
        ) from None
    target = Path(output_path)
    shown_out = os.fspath(output_path)
    if target.exists():
        if source.samefile(target):
            raise BatchInputError(
                "the output is the input file: give another --output (the run "
                "appends answers to it)",
                path=shown_out,
            )
        if not target.is_file():
            raise BatchInputError(
                "the output is not a file: give a file path for --output",
                path=shown_out,
            )
        if not os.access(target, os.W_OK):
            raise BatchInputError(
                "the output file is not writable: check its permissions or give "
                "another --output",
                path=shown_out,
            )
        return
    directory = target.parent
    if not directory.is_dir():
        raise BatchInputError(
            f"the output's directory {os.fspath(directory)!r} does not exist: "
            "create it first, or give another --output",
            path=shown_out,
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BatchInputError(
            f"the output's directory {os.fspath(directory)!r} is not writable: "
            "check its permissions, or give another --output",
            path=shown_out,
        )


def _lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """``(line_no, text)`` for every non-blank line, read one at a time."""
    shown = os.fspath(path)
    with Path(path).open("rb") as file:
        for line_no, raw in enumerate(file, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise BatchInputError(
                    f"not UTF-8 text (byte {error.start + 1} of the line): save the "
                    "file as UTF-8",
                    line_no=line_no,
                    path=shown,
                ) from None
            if line_no == 1:
                text = text.removeprefix(_BOM)
            if text.strip():
                yield line_no, text


def _requests(path: str | os.PathLike[str]) -> Generator[BatchRequest]:
    """Every request in the file, each line checked by ``parse_line``."""
    shown = os.fspath(path)
    for line_no, text in _lines(path):
        try:
            yield parse_line(text, line_no)
        except BatchInputError as error:
            raise BatchInputError(
                error.message, line_no=error.line_no, path=shown
            ) from None


def _digest(custom_id: str) -> bytes:
    return hashlib.blake2b(
        custom_id.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_SIZE
    ).digest()


def _earlier_ids(
    path: str | os.PathLike[str], digest: bytes, before: int
) -> dict[str, int]:
    """The ids before line ``before`` whose digest is ``digest``, and their lines."""
    found: dict[str, int] = {}
    with contextlib.closing(_requests(path)) as requests:
        for request in requests:
            if request.line_no >= before:
                break
            if _digest(request.custom_id) == digest:
                found.setdefault(request.custom_id, request.line_no)
    return found


def validate_input(path: str | os.PathLike[str]) -> int:
    """Check every line of the input in one streaming pass.

    Args:
        path: The input JSONL file.

    Returns:
        The number of requests (non-blank lines).

    Raises:
        BatchInputError: The first bad line (with the path and its line
            number), or a ``custom_id`` used twice (naming both lines).
    """
    seen: set[bytes] = set()
    # Digests two different ids share (rare), with the ids behind them.
    shared: dict[bytes, dict[str, int]] = {}
    count = 0
    for request in _requests(path):
        count += 1
        digest = _digest(request.custom_id)
        if digest not in seen:
            seen.add(digest)
            continue
        ids = shared.get(digest)
        if ids is None:
            ids = _earlier_ids(path, digest, request.line_no)
            shared[digest] = ids
        first = ids.get(request.custom_id)
        if first is not None:
            raise BatchInputError(
                f"custom_id {request.custom_id!r} already used on line {first}: "
                "every line needs its own custom_id",
                line_no=request.line_no,
                path=os.fspath(path),
            )
        ids[request.custom_id] = request.line_no
    return count


def iter_requests(
    path: str | os.PathLike[str], skip: Container[str] = frozenset()
) -> Iterator[BatchRequest]:
    """The input's requests, read one line at a time.

    Args:
        path: The input JSONL file (checked by :func:`validate_input`).
        skip: ``custom_id`` values to leave out (those already answered).

    Yields:
        Each request not in ``skip``, in file order.

    Raises:
        BatchInputError: A line is bad (the file changed since it was
            validated).
    """
    for request in _requests(path):
        if request.custom_id not in skip:
            yield request
