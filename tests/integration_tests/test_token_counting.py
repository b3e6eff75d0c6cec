"""Token counting works offline on the model and on the fallback chain.

No tokenizer is imported (``tiktoken``, ``transformers``) and no connection is
attempted: the check runs in a fresh interpreter where both imports and every
socket connection fail loudly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.fallback import ChatHolySheepFallback

KEY = "cr_token_counting_key_0123456"
MESSAGES = [
    SystemMessage("You are terse."),
    HumanMessage("How many sheep are in the field behind the barn?"),
    AIMessage("Twelve."),
    HumanMessage("And in the next one?"),
]

_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys

    tried = []

    class NoTokenizers:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"transformers", "tiktoken"}:
                tried.append(name)
                raise ImportError(f"{name} is blocked in this test")
            return None

    def no_network(*args, **kwargs):
        tried.append("network")
        raise OSError("no network in this test")

    sys.meta_path.insert(0, NoTokenizers())
    socket.socket.connect = no_network
    socket.create_connection = no_network
    socket.getaddrinfo = no_network

    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import HumanMessage
    from langchain_core.messages.utils import trim_messages

    from langchain_holysheep import ChatHolySheep
    from langchain_holysheep.fallback import ChatHolySheepFallback

    key = "cr_token_counting_key_0123456"
    llm = ChatHolySheep(api_key=key)
    chains = [
        ChatHolySheepFallback(models=["mistral-small-2603", "gpt-4.1"], api_key=key),
        # A primary whose own counter would load GPT-2 through transformers:
        ChatHolySheepFallback(models=[FakeListChatModel(responses=["x"]), llm]),
    ]
    messages = [HumanMessage("hello there, how are you today?")] * 3
    out = {"counts": [], "errors": []}
    for model in [llm, *chains]:
        out["counts"].append(
            [model.get_num_tokens("hello world"),
             model.get_num_tokens_from_messages(messages)]
        )
        try:
            model.get_token_ids("hello")
        except NotImplementedError as error:
            out["errors"].append(str(error))
        trim_messages(messages, max_tokens=20, token_counter=model, strategy="last")
    out["tried"] = tried
    print(json.dumps(out))
    """
)


def test_counting_needs_no_tokenizer_and_no_network():
    """Regression: ``chain.get_num_tokens`` fell through to core's GPT-2 tokenizer.

    Without ``transformers`` that raised; with it, a hub download was retried
    for minutes.
    """
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["tried"] == []
    counts = out["counts"]
    assert all(text > 0 and prompt > 0 for text, prompt in counts)
    assert counts[0] == counts[1] == counts[2]  # the chain counts as its members
    assert len(out["errors"]) == 3
    assert all("get_num_tokens" in e for e in out["errors"])


@pytest.fixture
def chains(gw):
    primary = ChatHolySheep(base_url=gw.base_url, api_key=KEY)
    return [
        primary.with_model_fallbacks(["gpt-4.1"]),
        ChatHolySheepFallback(models=[FakeListChatModel(responses=["x"]), primary]),
    ]


def test_the_chain_estimates_as_the_primary_does(gw, chains):
    primary = ChatHolySheep(base_url=gw.base_url, api_key=KEY)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    for chain in chains:
        assert chain.get_num_tokens_from_messages(MESSAGES) == (
            primary.get_num_tokens_from_messages(MESSAGES)
        )
        assert chain.get_num_tokens_from_messages(MESSAGES, tools) > (
            chain.get_num_tokens_from_messages(MESSAGES)
        )
        assert chain.get_num_tokens("a" * 400) == primary.get_num_tokens("a" * 400)
    assert gw.requests == []  # counting sends nothing


def test_get_token_ids_says_what_to_use_at_once(gw, chains):
    for model in [ChatHolySheep(base_url=gw.base_url, api_key=KEY), *chains]:
        with pytest.raises(NotImplementedError, match="no offline tokenizer"):
            model.get_token_ids("hello")


def test_custom_get_token_ids_is_used_when_given(gw):
    def ids(text):
        return [ord(c) for c in text]

    llm = ChatHolySheep(base_url=gw.base_url, api_key=KEY, custom_get_token_ids=ids)
    chain = ChatHolySheepFallback(models=[llm], custom_get_token_ids=ids)
    for model in (llm, chain):
        assert model.get_token_ids("abc") == [97, 98, 99]
        assert model.get_num_tokens("abcd") == 4
