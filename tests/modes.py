"""The four ways a program calls a chat model, for tests that run each of them.

``call`` answers with one message (streams aggregated); ``collect`` keeps each
streamed chunk, so a test can see what arrived before a stream raised.
"""

from __future__ import annotations

from langchain_core.messages import AIMessageChunk

MODES = ["invoke", "ainvoke", "stream", "astream"]
INVOKES = ["invoke", "ainvoke"]
STREAMS = ["stream", "astream"]


async def call(runnable, mode, text="hello", **kwargs):
    """Run ``runnable`` one way; streams are aggregated into one message."""
    if mode == "invoke":
        return runnable.invoke(text, **kwargs)
    if mode == "ainvoke":
        return await runnable.ainvoke(text, **kwargs)
    chunks = []
    await collect(runnable, mode, chunks, text, **kwargs)
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    return sum(chunks[1:], chunks[0])


async def collect(runnable, mode, received, text="hi", **kwargs):
    """Stream into ``received`` chunk by chunk (kept if the stream raises)."""
    if mode == "stream":
        for chunk in runnable.stream(text, **kwargs):
            received.append(chunk)
    else:
        async for chunk in runnable.astream(text, **kwargs):
            received.append(chunk)


__all__ = ["INVOKES", "MODES", "STREAMS", "call", "collect"]
