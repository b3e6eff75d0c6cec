"""Run the offline gateway standalone: ``python -m langchain_holysheep.testing``.

It serves in the foreground until Ctrl-C (or SIGTERM) and prints its base URL
as the first line of standard output, so a benchmark or demo can start it in a
separate process and read where to connect::

    python -m langchain_holysheep.testing --port 8787 [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING

from langchain_holysheep.testing._gateway import OfflineGateway

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m langchain_holysheep.testing",
        description="Serve the HolySheep offline OpenAI-compatible gateway.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument(
        "--port", type=int, default=8787, help="port to bind (0: pick a free one)"
    )
    parser.add_argument(
        "--api-key", default=None, help="require this key (default: accept any key)"
    )
    parser.add_argument(
        "--strict-models",
        action="store_true",
        help="answer 404 for models not in the served list",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit status.
    """
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    gateway = OfflineGateway(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        strict_models=args.strict_models,
        log_requests=False,
    )
    with gateway:
        sys.stdout.write(f"{gateway.base_url}\n")
        sys.stdout.flush()
        sys.stderr.write("HolySheep offline gateway running; press Ctrl-C to stop.\n")
        try:
            while not stop.wait(0.1):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
