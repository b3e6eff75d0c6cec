"""Embeddings: ``HolySheepEmbeddings`` vs the raw SDK's ``embeddings.create`` loop.

1,000 texts, 100 per request (10 requests), sequential, against the offline
gateway in a separate process; candidates interleaved, medians and ratios. Both
use their defaults for the wire format and return ``list[list[float]]``.

    uv run python benchmarks/bench_embeddings.py [--quick] [--rounds N] [--json FILE]
"""

from __future__ import annotations

import openai
from common import (
    API_KEY,
    BASELINE,
    GatewayProcess,
    Result,
    emit,
    interleave,
    parser,
    timed,
)

from langchain_holysheep.embeddings import HolySheepEmbeddings

MODEL = "text-embedding-3-small"
CANDIDATE = "HolySheepEmbeddings"


def main(argv: list[str] | None = None) -> list[Result]:
    """Measure embedding overhead and print it.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The results.
    """
    args = parser(__doc__ or "").parse_args(argv)
    count, chunk = (50, 10) if args.quick else (1000, 100)
    rounds = args.rounds or (1 if args.quick else 15)
    texts = [f"document number {i} about sheep and wool" for i in range(count)]
    with GatewayProcess() as gateway:
        sdk = openai.OpenAI(base_url=gateway.base_url, api_key=API_KEY)
        embeddings = HolySheepEmbeddings(
            model=MODEL, base_url=gateway.base_url, api_key=API_KEY, chunk_size=chunk
        )

        def raw_loop() -> list[list[float]]:
            vectors: list[list[float]] = []
            for start in range(0, len(texts), chunk):
                response = sdk.embeddings.create(
                    model=MODEL, input=texts[start : start + chunk]
                )
                vectors.extend(item.embedding for item in response.data)
            return vectors

        if raw_loop() != embeddings.embed_documents(texts):
            msg = "the raw SDK and HolySheepEmbeddings disagree"
            raise RuntimeError(msg)

        samples = interleave(
            {
                BASELINE: lambda: timed(raw_loop),
                CANDIDATE: lambda: timed(lambda: embeddings.embed_documents(texts)),
            },
            rounds,
        )
        sdk.close()
        embeddings.close()
    result = Result(
        measure=f"HolySheepEmbeddings, {count:,} texts, chunk_size {chunk} (wall time)",
        unit="s",
        target="<= 1.1x the raw SDK's embeddings.create loop",
        target_ratio=1.1,
        judged=CANDIDATE,
        samples=samples,
        note=f"{rounds} samples per candidate",
    )
    emit([result], args.json)
    return [result]


if __name__ == "__main__":
    main()
