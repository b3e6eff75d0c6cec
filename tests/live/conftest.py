"""Tests against the real HolySheep gateway.

Every test here is marked ``live`` and skipped unless ``HOLYSHEEP_API_KEY`` is set:

    HOLYSHEEP_API_KEY=cr_... uv run pytest tests/live -m live
"""

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config, items):
    live_dir = Path(__file__).parent
    skip = pytest.mark.skip(
        reason="set HOLYSHEEP_API_KEY to run tests against the live gateway"
    )
    for item in items:
        if live_dir in Path(item.fspath).parents:
            item.add_marker(pytest.mark.live)
            if not os.environ.get("HOLYSHEEP_API_KEY"):
                item.add_marker(skip)
