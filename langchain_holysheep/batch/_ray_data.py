"""Chat completions as a Ray Data stage: ``ds.map_batches(HolySheepChatCompletions)``.

For pipelines already inside Ray::

    import ray
    from langchain_holysheep.batch import HolySheepChatCompletions

    ds = ray.data.read_json("requests.jsonl")  # rows with "custom_id" and "body"
    answered = ds.map_batches(
        HolySheepChatCompletions,
        fn_constructor_kwargs={"model": "gpt-5.2", "concurrency": 16},
        compute=ray.data.ActorPoolStrategy(size=4),
        batch_size=256,
    )

Each Ray Data actor holds one :class:`HolySheepChatCompletions` and sends every
batch with the bulk-run engine (:func:`~langchain_holysheep.batch._engine.\
arun_requests`: retries, fallbacks, the limiter, the budget), at most
``concurrency`` requests in flight per actor, on one event loop the actor keeps
(so its connection pool lives as long as the actor). A row carries ``body`` (a
chat-completions request, as a dict or as JSON text) and optionally
``custom_id``; the output keeps every input column and adds:

* ``response``: the completion as JSON text, or ``None``;
* ``error``: ``{"code", "message"}`` as JSON text, or ``None`` (a bad row, a
  failed request, or one the budget left unsent is an error row, never an
  exception that stops the pipeline);
* ``cost_usd`` (a float, or ``None`` when unknown), ``model``, ``latency_ms``.

A ``body`` given as a dict goes through Arrow on its way here, which turns
nested lists into arrays, integers into floats when a column mixes them, and
fills keys other rows have with nulls; the stage turns them back (lists, whole
floats as integers, null keys dropped). Give JSON text to send a body exactly.

The API key is read from ``HOLYSHEEP_API_KEY`` in each actor's environment
(pass ``api_key`` only as a ``SecretStr``). Limits, 429 blocks and breakers are
per actor unless ``redis_url`` shares them; a ``budget_usd`` needs ``redis_url``
(one budget for every actor of the pipeline).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from pydantic import SecretStr

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from langchain_holysheep.batch._engine import BatchSettings
    from langchain_holysheep.batch._types import BatchRequest, Budget, LineResult

__all__ = ["OUTPUT_COLUMNS", "HolySheepChatCompletions"]

OUTPUT_COLUMNS: Final = ("response", "error", "cost_usd", "model", "latency_ms")
"""The columns the stage adds to each batch."""

_UNSENT_CODE: Final = "budget_exhausted"
_UNSENT_MESSAGE: Final = (
    "not sent: the budget (budget_usd) was spent before this row's turn"
)
_INVALID_CODE: Final = "invalid_request"


def _plain(value: Any) -> Any:
    """A value as JSON would have it: what Arrow and NumPy made of it undone."""
    if isinstance(value, Mapping):
        return {
            str(key): _plain(item)
            for key, item in value.items()
            if item is not None and not _is_nan(item)
        }
    if isinstance(value, list | tuple) or _is_array(value):
        return [_plain(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # a NumPy scalar
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_array(value: Any) -> bool:
    return hasattr(value, "tolist") and hasattr(value, "shape")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _columns(batch: Any) -> dict[str, list[Any]]:
    """The batch's columns as lists (NumPy dict, pandas or Arrow batch format)."""
    if hasattr(batch, "to_pydict"):  # pyarrow.Table
        return dict(batch.to_pydict())
    return {str(name): list(column) for name, column in batch.items()}


def _error_json(code: str, message: str) -> str:
    return json.dumps({"code": code, "message": message}, separators=(",", ":"))


class _Row:
    """One row's output cells."""

    __slots__ = ("cost_usd", "error", "latency_ms", "model", "response")

    def __init__(self, error: str | None = None) -> None:
        self.response: str | None = None
        self.error = error
        self.cost_usd: float | None = None
        self.model: str | None = None
        self.latency_ms: float | None = None

    @classmethod
    def from_result(cls, result: LineResult) -> _Row:
        data = json.loads(result.line)
        row = cls()
        response = data.get("response")
        body = response.get("body") if isinstance(response, Mapping) else None
        if data.get("error") is not None:
            row.error = json.dumps(data["error"], separators=(",", ":"))
        elif body is not None:
            row.response = json.dumps(body, separators=(",", ":"))
        cost = data.get("cost_usd")
        row.cost_usd = None if cost is None else float(cost)
        row.model = data.get("model") or result.model
        row.latency_ms = result.latency_ms
        return row


class HolySheepChatCompletions:
    """A Ray Data callable class that answers a ``body`` column (see the module).

    Args:
        body_column: The column holding each request body (dict or JSON text).
        id_column: The column holding each row's ``custom_id``, if the batch
            has it (otherwise the row's place in the batch is its id).
        **settings: The bulk run's settings (``BatchSettings`` fields: ``model``,
            ``fallbacks``, ``concurrency``, ``retries``, ``requests_per_minute``,
            ``tokens_per_minute``, ``redis_url``, ``namespace``, ``budget_usd``,
            ``prices``, ``api_key``, ``base_url``, ``timeout``).

    Raises:
        BatchInputError: An unknown or bad setting, or ``budget_usd`` without
            ``redis_url``.
    """

    def __init__(
        self,
        *,
        body_column: str = "body",
        id_column: str = "custom_id",
        **settings: Any,
    ) -> None:
        """Check the settings; the event loop starts with the first batch."""
        self._body_column = body_column
        self._id_column = id_column
        self._settings = _make_settings(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._budget: Budget | None = None
        self._lock = threading.Lock()

    def __call__(self, batch: Any) -> Any:
        """Answer one batch: the input columns plus :data:`OUTPUT_COLUMNS`.

        Args:
            batch: A Ray Data batch (``dict`` of NumPy arrays, pandas or Arrow).

        Returns:
            The batch with the output columns added (a ``dict`` of columns for
            NumPy and Arrow batches, a ``DataFrame`` for pandas ones).

        Raises:
            BatchInputError: The batch has no ``body_column``, or repeats an id.
        """
        columns = _columns(batch)
        rows, requests = self._requests(columns)
        if requests:
            results, _ = self._run(self._send(requests))
            for request in requests:
                result = results.get(request.custom_id)
                rows[request.line_no - 1] = (
                    _Row(_error_json(_UNSENT_CODE, _UNSENT_MESSAGE))
                    if result is None
                    else _Row.from_result(result)
                )
        added = {name: [getattr(row, name) for row in rows] for name in OUTPUT_COLUMNS}
        if hasattr(batch, "assign"):  # pandas.DataFrame
            return batch.assign(**added)
        if hasattr(batch, "to_pydict"):
            return {**columns, **added}
        return {**dict(batch.items()), **added}

    def _requests(
        self, columns: dict[str, list[Any]]
    ) -> tuple[list[_Row], list[BatchRequest]]:
        from langchain_holysheep.batch._format import (  # noqa: PLC0415
            BatchInputError,
            parse_line,
        )

        if self._body_column not in columns:
            msg = (
                f"the batch has no {self._body_column!r} column (its columns: "
                f"{', '.join(sorted(columns)) or 'none'}); pass body_column=... "
                "to HolySheepChatCompletions"
            )
            raise BatchInputError(msg)
        bodies = columns[self._body_column]
        ids = columns.get(self._id_column)
        rows = [_Row() for _ in bodies]
        requests: list[BatchRequest] = []
        seen: set[str] = set()
        for index, raw in enumerate(bodies):
            custom_id = str(index) if ids is None else ids[index]
            try:
                request = parse_line(_line(custom_id, raw), index + 1)
            except BatchInputError as error:
                rows[index].error = _error_json(_INVALID_CODE, str(error))
                continue
            if request.custom_id in seen:
                msg = (
                    f"the custom_id {request.custom_id!r} is in the batch twice: "
                    "every row needs its own"
                )
                raise BatchInputError(msg)
            seen.add(request.custom_id)
            requests.append(request)
        return rows, requests

    async def _send(
        self, requests: list[BatchRequest]
    ) -> tuple[dict[str, LineResult], Any]:
        from langchain_holysheep.batch._engine import (  # noqa: PLC0415
            arun_requests,
        )

        results: dict[str, LineResult] = {}

        def keep(result: LineResult) -> None:
            results[result.custom_id] = result

        stats = await arun_requests(
            requests, self._settings, on_result=keep, budget=self._get_budget()
        )
        return results, stats

    def _get_budget(self) -> Budget | None:
        settings = self._settings
        if settings.budget_usd is None:
            return None
        if self._budget is None:
            from langchain_holysheep.batch._budget import (  # noqa: PLC0415
                make_budget,
            )
            from langchain_holysheep.batch._ray import _api_key  # noqa: PLC0415

            self._budget = make_budget(
                settings.budget_usd,
                redis_url=settings.redis_url,
                namespace=settings.namespace,
                api_key=_api_key(settings),
            )
        return self._budget

    def _run(
        self, coroutine: Coroutine[Any, Any, tuple[dict[str, LineResult], Any]]
    ) -> tuple[dict[str, LineResult], Any]:
        """Run ``coroutine`` on this instance's own loop, in its own thread."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever,
                    name="holysheep-ray-data-loop",
                    daemon=True,
                ).start()
                self._loop = loop
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


def _line(custom_id: Any, raw: Any) -> str:
    """The batch line ``parse_line`` checks, from a row's id and body."""
    body = raw if isinstance(raw, str) else None
    if body is not None:
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = body  # parse_line says what is wrong with it
    else:
        parsed = _plain(raw)
    return json.dumps(
        {"custom_id": _plain(custom_id), "body": parsed}, separators=(",", ":")
    )


def _make_settings(settings: dict[str, Any]) -> BatchSettings:
    from langchain_holysheep.batch._engine import BatchSettings  # noqa: PLC0415
    from langchain_holysheep.batch._format import BatchInputError  # noqa: PLC0415

    if "budget_usd" in settings and settings["budget_usd"] is not None:
        settings = {**settings, "budget_usd": Decimal(str(settings["budget_usd"]))}
        if not settings.get("redis_url"):
            msg = (
                "budget_usd needs redis_url in HolySheepChatCompletions: the "
                "pipeline's actors share one budget through Redis (without it each "
                "actor would spend the whole budget)"
            )
            raise BatchInputError(msg)
    api_key = settings.get("api_key")
    if api_key is not None and not isinstance(api_key, SecretStr):
        msg = (
            "HolySheepChatCompletions takes api_key only as a pydantic SecretStr "
            "(Ray stores constructor arguments; a plain string would be readable "
            "there): set HOLYSHEEP_API_KEY in the workers' environment instead"
        )
        raise BatchInputError(msg)
    if "fallbacks" in settings:
        settings = {**settings, "fallbacks": tuple(settings["fallbacks"])}
    try:
        return BatchSettings(**settings)
    except TypeError as error:
        msg = f"HolySheepChatCompletions: {error} (see BatchSettings for the fields)"
        raise BatchInputError(msg) from error
