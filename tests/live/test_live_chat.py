"""ChatHolySheep against the real gateway (skipped without HOLYSHEEP_API_KEY)."""

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import HolySheepModelNotFoundError

MODELS = [
    "mistral-small-2603",
    "gpt-4.1",
    "claude-sonnet-4.5",
    "gemini-2.5-flash",
    "deepseek-v3.2",
]


class TestChatHolySheepLive(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatHolySheep]:
        return ChatHolySheep

    @property
    def chat_model_params(self) -> dict:
        return {"model": "gpt-4.1", "temperature": 0, "max_retries": 2}

    @property
    def model_override_value(self) -> str:
        return "mistral-small-2603"

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True


@pytest.mark.parametrize("model_id", MODELS)
def test_every_family_streams_usage(model_id):
    """Verifies the claim that the gateway accepts stream_options for each family."""
    full = None
    for chunk in ChatHolySheep(model=model_id, max_tokens=20).stream("Say hi."):
        full = chunk if full is None else full + chunk
    assert full is not None
    assert full.content
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] > 0
    assert full.response_metadata["finish_reason"]


def test_reasoning_content_from_deepseek():
    message = ChatHolySheep(model="deepseek-v3.2", reasoning_effort="low").invoke(
        "What is 17 * 23?"
    )
    assert "391" in message.text


def test_unknown_model_is_model_not_found():
    with pytest.raises(HolySheepModelNotFoundError):
        ChatHolySheep(model="Mistral-Small-2603", max_retries=0).invoke("hi")
