"""Unit tests never open a socket: pytest-socket enforces it for this tier."""

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_sockets():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(autouse=True)
def _no_holysheep_env(monkeypatch):
    """Keep a developer's real key and URL out of unit tests."""
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    monkeypatch.delenv("HOLYSHEEP_BASE_URL", raising=False)
    monkeypatch.delenv("HOLYSHEEP_REDIS_URL", raising=False)
