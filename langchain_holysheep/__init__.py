"""LangChain integration for the HolySheep AI gateway.

``import langchain_holysheep`` does not import ``openai``: the SDK loads when the
first client is built, so short scripts and CLIs start fast.
"""

from langchain_holysheep.chat_models import ChatHolySheep

__version__ = "0.1.0"

__all__ = ["ChatHolySheep", "__version__"]
