"""Shared fixtures: a ChatHolySheep pointed at the offline gateway (real HTTP)."""

import pytest

from langchain_holysheep import ChatHolySheep

TEST_KEY = "cr_integration_key_0123456789"


@pytest.fixture
def gw(holysheep_gateway):
    return holysheep_gateway


@pytest.fixture
def make_model(gw):
    def make(**kwargs):
        kwargs.setdefault("api_key", TEST_KEY)
        kwargs.setdefault("max_retries", 0)
        return ChatHolySheep(base_url=gw.base_url, **kwargs)

    return make


@pytest.fixture
def model(make_model):
    return make_model()
