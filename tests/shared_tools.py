"""The tools and schemas several test files bind: one definition for all of them."""

from __future__ import annotations

from langchain_core.tools import tool
from pydantic import BaseModel, Field


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {city}"


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="The person's name")
    age: int = Field(description="Age in years")


__all__ = ["Person", "add", "get_weather", "multiply"]
