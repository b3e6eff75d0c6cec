"""Real Redis for the rate-limiter tests: the shared server and private ones.

The shared server is the one ``.ci/run`` makes sure of, on 127.0.0.1:6379
(``HOLYSHEEP_TEST_REDIS_URL`` overrides it). Each test uses its own namespace and
deletes its keys afterwards. Tests that count server-wide statistics (``INFO
commandstats``) or stop the server run a private ``redis-server`` of their own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

SHARED_REDIS_URL = os.environ.get(
    "HOLYSHEEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port_url():
    """A Redis URL nothing listens on (connections are refused at once)."""
    return f"redis://127.0.0.1:{free_port()}/0"


def client(url=SHARED_REDIS_URL):
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def require(url=SHARED_REDIS_URL):
    try:
        client(url).ping()
    except Exception as error:
        pytest.fail(
            f"no Redis at {url} ({error!r}): start one with `redis-server "
            '--daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no` '
            "(bash .ci/run does it)"
        )


def delete_namespace(namespace, url=SHARED_REDIS_URL):
    redis = client(url)
    keys = list(redis.scan_iter(match=f"hs:*:{namespace}:*", count=500))
    if keys:
        redis.delete(*keys)


@contextlib.contextmanager
def namespace_on_shared_redis():
    """A fresh namespace on the shared Redis, its keys deleted afterwards."""
    require()
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield namespace
    finally:
        delete_namespace(namespace)


class PrivateRedis:
    """A ``redis-server`` of a test's own, on a free port, keeping nothing on disk."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (bash .ci/run installs it)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client(self.url).ping()
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("the private redis-server did not start")
                time.sleep(0.02)
            else:
                return self

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def script_calls(self):
        """``EVALSHA`` plus ``EVAL`` calls so far (``INFO commandstats``)."""
        stats = client(self.url).info("commandstats")
        return sum(
            stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("evalsha", "eval")
        )
