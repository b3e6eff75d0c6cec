"""langchain-tests' standard unit suite for ChatHolySheep."""

import pytest
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_holysheep import ChatHolySheep


class TestChatHolySheepStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatHolySheep]:
        return ChatHolySheep

    @property
    def chat_model_params(self) -> dict:
        return {"model": "mistral-small-2603", "api_key": "cr_test_key_for_units"}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return (
            {
                "HOLYSHEEP_API_KEY": "cr_env_key_123456",
                "HOLYSHEEP_BASE_URL": "https://gateway.example.com/v1",
            },
            {"model": "gpt-4.1"},
            {
                "api_key": "cr_env_key_123456",
                "base_url": "https://gateway.example.com/v1",
                "model_name": "gpt-4.1",
            },
        )

    @pytest.mark.xfail(
        reason=(
            "langchain-tests loads with allowed_objects='all', which langchain-core "
            "limits to its own classes; test_chat_params.py::"
            "test_serialization_round_trip checks the round trip instead."
        ),
        strict=True,
    )
    def test_serdes(self, model, snapshot) -> None:
        super().test_serdes(model, snapshot)
