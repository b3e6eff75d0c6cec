import subprocess
import sys

import pytest

import langchain_holysheep

EXPECTED_ALL = {
    "ChatHolySheep",
    "ChatHolySheepFallback",
    "HolySheepEmbeddings",
    "HolySheepRateLimiter",
    "__version__",
}


def test_all_is_pinned():
    assert set(langchain_holysheep.__all__) == EXPECTED_ALL
    for name in langchain_holysheep.__all__:
        assert hasattr(langchain_holysheep, name)


def test_import_does_not_load_openai():
    """Importing the package must stay cheap: the SDK loads with the first client."""
    code = (
        "import sys, langchain_holysheep; "
        "from langchain_holysheep import ChatHolySheep; "
        "ChatHolySheep(api_key='cr_x'); "
        "print('openai' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_rate_limiter_loads_redis_only_for_a_redis_url():
    """In-process limits need no redis-py (and no openai); a Redis URL loads it."""
    code = (
        "import sys, os; os.environ.pop('HOLYSHEEP_REDIS_URL', None); "
        "import langchain_holysheep; "
        "from langchain_holysheep import ChatHolySheep, HolySheepRateLimiter; "
        "limiter = HolySheepRateLimiter(requests_per_minute=60); "
        "ChatHolySheep(api_key='cr_x', rate_limiter=limiter); "
        "print('redis' in sys.modules, 'openai' in sys.modules); "
        "HolySheepRateLimiter(redis_url='redis://127.0.0.1:1/0'); "
        "print('redis' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False", "True"]


def test_bare_import_is_cheap():
    """The pytest plugin imports the package: that must not pull in LangChain."""
    code = (
        "import sys, langchain_holysheep, langchain_holysheep.testing; "
        "print(any(m.startswith('langchain_core') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = langchain_holysheep.no_such_thing


def test_batch_loads_neither_openai_nor_ray_nor_rich_until_used():
    """`langchain_holysheep.batch` is cheap to import; its extras load on use only."""
    code = (
        "import sys; import langchain_holysheep.batch; "
        "loaded = lambda: [m for m in ('openai', 'ray', 'rich', 'redis') "
        "if m in sys.modules]; "
        "print(loaded()); "
        "from langchain_holysheep.batch import run_batch, BatchSettings; "
        "print(loaded())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["[]", "['openai']"]


def test_batch_all_is_pinned():
    from langchain_holysheep import batch

    assert set(batch.__all__) == set(batch._EXPORTS)
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = batch.no_such_thing
