"""Pytest fixtures for testing LangChain code against the offline gateway.

The plugin is registered through the ``pytest11`` entry point named
``holysheep``, so the fixtures are available in every test session as soon as
``langchain-holysheep`` is installed; nothing needs importing. (Disable it with
``-p no:holysheep``.)

Fixtures:

* ``holysheep_gateway_server`` (session scope): one running
  :class:`~langchain_holysheep.testing.OfflineGateway` for the whole session.
* ``holysheep_gateway``: the same gateway, ``reset()`` before the test, so
  each test starts with empty queues and an empty request log.
* ``holysheep_env``: ``holysheep_gateway`` with ``HOLYSHEEP_BASE_URL`` and
  ``HOLYSHEEP_API_KEY`` (``"cr_offline_test_key"``) set for the test, so code
  that reads its configuration from the environment talks to the gateway.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from langchain_holysheep.testing import DEFAULT_MODELS, OfflineGateway

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "OFFLINE_API_KEY",
    "holysheep_env",
    "holysheep_gateway",
    "holysheep_gateway_server",
]

OFFLINE_API_KEY = "cr_offline_test_key"
"""The API key ``holysheep_env`` puts in ``HOLYSHEEP_API_KEY``."""


@pytest.fixture(scope="session")
def holysheep_gateway_server() -> Iterator[OfflineGateway]:
    """Run one offline gateway for the whole test session.

    Yields:
        The running gateway (it accepts any API key).
    """
    with OfflineGateway() as gateway:
        yield gateway


@pytest.fixture
def holysheep_gateway(
    holysheep_gateway_server: OfflineGateway,
) -> OfflineGateway:
    """Give a test the session gateway, freshly reset.

    Args:
        holysheep_gateway_server: The session gateway.

    Returns:
        The gateway with no queued replies, defaults, responders or log, any
        API key accepted (no basic auth), the default model list and lenient
        model checks.
        Fallback circuit breakers (process-wide) are reset too, so failures a
        test scripts cannot open a circuit for the next test.
    """
    fallback = sys.modules.get("langchain_holysheep.fallback")
    if fallback is not None:  # only if loaded: the plugin itself stays light
        fallback.reset_circuit_breakers()
    gateway = holysheep_gateway_server
    gateway.reset()
    gateway.api_key = None
    gateway.basic_auth = None
    gateway.strict_models = False
    gateway.models = list(DEFAULT_MODELS)
    gateway.log_requests = True
    return gateway


@pytest.fixture
def holysheep_env(
    holysheep_gateway: OfflineGateway, monkeypatch: pytest.MonkeyPatch
) -> OfflineGateway:
    """Point ``HOLYSHEEP_BASE_URL``/``HOLYSHEEP_API_KEY`` at the gateway.

    Args:
        holysheep_gateway: The reset gateway.
        monkeypatch: Pytest's monkeypatch fixture (undoes the variables).

    Returns:
        The gateway.
    """
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", holysheep_gateway.base_url)
    monkeypatch.setenv("HOLYSHEEP_API_KEY", OFFLINE_API_KEY)
    return holysheep_gateway
