"""langchain-tests' integration suite against the offline gateway.

The offline gateway answers like a model but is not one, so the tests that need
a capable model (tool choice, structured output, multimodal understanding, ...)
run in full under ``tests/live`` against the real gateway instead.
"""

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.testing import OfflineGateway

_gateway = OfflineGateway()


def _needs_a_model(name: str):
    """Skip a standard test whose assertions need a real model's judgement."""
    reason = "needs a capable model: runs in tests/live against the real gateway"
    return pytest.mark.skip(reason=reason)(getattr(ChatModelIntegrationTests, name))


@pytest.fixture(scope="module", autouse=True)
def _running_gateway():
    _gateway.start()
    yield
    _gateway.stop()


class TestChatHolySheepOffline(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatHolySheep]:
        return ChatHolySheep

    @property
    def chat_model_params(self) -> dict:
        return {
            "model": "mistral-small-2603",
            "api_key": "cr_offline_standard",
            "base_url": _gateway.base_url,
            "max_retries": 0,
        }

    test_tool_calling = _needs_a_model("test_tool_calling")
    test_tool_calling_async = _needs_a_model("test_tool_calling_async")
    test_bind_runnables_as_tools = _needs_a_model("test_bind_runnables_as_tools")
    test_tool_message_histories_list_content = _needs_a_model(
        "test_tool_message_histories_list_content"
    )
    test_tool_choice = _needs_a_model("test_tool_choice")
    test_tool_calling_with_no_arguments = _needs_a_model(
        "test_tool_calling_with_no_arguments"
    )
    test_structured_output = _needs_a_model("test_structured_output")
    test_structured_output_async = _needs_a_model("test_structured_output_async")
    test_structured_output_pydantic_2_v1 = _needs_a_model(
        "test_structured_output_pydantic_2_v1"
    )
    test_structured_output_optional_param = _needs_a_model(
        "test_structured_output_optional_param"
    )
    test_agent_loop = _needs_a_model("test_agent_loop")
    test_unicode_tool_call_integration = _needs_a_model(
        "test_unicode_tool_call_integration"
    )

    @property
    def model_override_value(self) -> str:
        return "gpt-4.1"
