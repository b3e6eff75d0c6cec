"""Model prices and exact cost arithmetic for HolySheep gateway calls.

The package ships a price table (``langchain_holysheep/data/prices.json``) with
HolySheep's published gateway prices in USD per 1M tokens. This module loads it,
lets you override prices (a dict, a JSON file, or the ``HOLYSHEEP_PRICES_FILE``
environment variable) and turns LangChain ``usage_metadata`` into a
:class:`Cost`.

Rules, in one place:

* Lookup is by exact model id first, then case-insensitive. Nothing else: no
  prefix matching, no aliases, no guessing. An unknown model has no cost (``None``).
* Cached input tokens (``input_token_details["cache_read"]``) are part of
  ``input_tokens`` in LangChain's accounting. They are billed at the model's
  ``cached_input_per_million`` price, or at ``input_per_million`` when the table
  has no cached price for the model; the remaining input tokens are billed at
  ``input_per_million``.
* Cache-write tokens (``input_token_details["cache_creation"]``, Claude's prompt
  caching) are part of ``input_tokens`` too, and billed at the model's
  ``cache_write_per_million`` price, or at ``input_per_million`` when the table
  has none (the packaged table lists none: the gateway publishes no such price).
* Reasoning tokens (``output_token_details["reasoning"]``) are already included in
  ``output_tokens`` (OpenAI's accounting, which LangChain follows), so they are
  billed once, as output tokens.
* A cost reported by the gateway always wins over the price table.
* A finished call's cost is decided by :func:`resolve_call_cost`, the one rule
  every caller (``ChatHolySheep``'s call metadata, the usage tracker) uses: the
  model's own ``response_metadata["cost_usd"]``, then the gateway's
  ``token_usage["cost_usd"]``, then the price table (for a dated served id
  without a price, the requested id's price).
* Arithmetic is done in :class:`decimal.Decimal` and the result is rounded
  (half-even) to 1e-9 USD before being returned as a ``float``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "PRICES_FILE_ENV_VAR",
    "Cost",
    "CostSource",
    "ModelPrice",
    "PriceTable",
    "PriceTableError",
    "cost_from_usage",
    "load_price_table",
    "monthly_cost",
    "resolve_call_cost",
    "resolve_call_usd",
]

PRICES_FILE_ENV_VAR = "HOLYSHEEP_PRICES_FILE"
"""Environment variable naming a JSON price file used when no overrides are given."""

CostSource: TypeAlias = Literal["price_table", "gateway"]
"""Where a cost came from: our price table, or the gateway's own bill."""

Overrides: TypeAlias = "Mapping[str, Any] | str | os.PathLike[str]"

_CTX = Context(prec=50, rounding=ROUND_HALF_EVEN)
_NANO = Decimal("1e-9")
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_ROW_FIELDS = frozenset(
    {
        "model",
        "input_per_million",
        "output_per_million",
        "cached_input_per_million",
        "cache_write_per_million",
        "source",
        "source_date",
    }
)
_OVERRIDE_SOURCE = "user override"


class PriceTableError(ValueError):
    """A price table or a price override is invalid; the message says what to fix."""


def _price_decimal(value: object, what: str) -> Decimal:
    """Validate a price (USD per 1M tokens) and convert it exactly to Decimal.

    Floats are converted through their shortest ``repr`` so that ``0.2`` becomes
    ``Decimal("0.2")`` rather than the binary approximation.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        msg = (
            f"{what} must be a number of USD per 1M tokens, "
            f"got {type(value).__name__} {value!r}"
        )
        raise PriceTableError(msg)
    if isinstance(value, float) and not math.isfinite(value):
        raise PriceTableError(f"{what} must be a finite number, got {value!r}")
    result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not result.is_finite():
        raise PriceTableError(f"{what} must be a finite number, got {value!r}")
    if result < 0:
        raise PriceTableError(f"{what} must not be negative, got {value!r}")
    return result


def _round_usd(value: Decimal) -> float:
    return float(value.quantize(_NANO, context=_CTX))


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price of one model, in USD per 1M tokens.

    Attributes:
        model: Model id as sent to the gateway, e.g. ``"gpt-4.1"``.
        input_per_million: USD per 1M (uncached) input tokens.
        output_per_million: USD per 1M output tokens (reasoning tokens included).
        cached_input_per_million: USD per 1M cached input tokens, or ``None`` when
            unknown; cached tokens are then billed at ``input_per_million``.
        source: Where the price comes from.
        source_date: ISO date (``YYYY-MM-DD``) of the source, if known.
        cache_write_per_million: USD per 1M cache-write input tokens, or
            ``None`` when unknown; they are then billed at ``input_per_million``.
    """

    model: str
    input_per_million: float
    output_per_million: float
    cached_input_per_million: float | None = None
    source: str = _OVERRIDE_SOURCE
    source_date: str | None = None
    cache_write_per_million: float | None = None
    _input: Decimal = field(init=False, repr=False, compare=False)
    _output: Decimal = field(init=False, repr=False, compare=False)
    _cached: Decimal = field(init=False, repr=False, compare=False)
    _write: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the row and precompute exact decimal prices.

        Raises:
            PriceTableError: A price is negative or not a number, the model id is
                empty, or ``source_date`` is not an ISO date.
        """
        if not isinstance(self.model, str) or not self.model.strip():
            raise PriceTableError(
                f"model id must be a non-empty string, got {self.model!r}"
            )
        where = f"price for {self.model!r}"
        input_ = _price_decimal(self.input_per_million, f"{where}: input_per_million")
        output = _price_decimal(self.output_per_million, f"{where}: output_per_million")
        cached = (
            input_
            if self.cached_input_per_million is None
            else _price_decimal(
                self.cached_input_per_million, f"{where}: cached_input_per_million"
            )
        )
        write = (
            input_
            if self.cache_write_per_million is None
            else _price_decimal(
                self.cache_write_per_million, f"{where}: cache_write_per_million"
            )
        )
        if not isinstance(self.source, str):
            raise PriceTableError(f"{where}: source must be a string")
        if self.source_date is not None:
            try:
                date.fromisoformat(self.source_date)
            except (TypeError, ValueError):
                msg = (
                    f"{where}: source_date must be an ISO date like '2026-01-01', "
                    f"got {self.source_date!r}"
                )
                raise PriceTableError(msg) from None
        object.__setattr__(self, "_input", input_)
        object.__setattr__(self, "_output", output)
        object.__setattr__(self, "_cached", cached)
        object.__setattr__(self, "_write", write)

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Cost:
        """Price a token count with this row.

        Args:
            input_tokens: All input tokens, cached and cache-write ones included.
            output_tokens: All output tokens, reasoning tokens included.
            cached_input_tokens: How many of ``input_tokens`` were cache reads.
                Clamped to ``input_tokens``.
            cache_write_tokens: How many of ``input_tokens`` were written to the
                cache. Clamped to what the cache reads leave.

        Returns:
            The exact cost, with ``source="price_table"``.
        """
        input_usd, cached_usd, write_usd, output_usd, total = self._parts(
            input_tokens, output_tokens, cached_input_tokens, cache_write_tokens
        )
        return Cost(
            usd=_round_usd(total),
            source="price_table",
            model=self.model,
            input_usd=_round_usd(input_usd),
            output_usd=_round_usd(output_usd),
            cached_input_usd=_round_usd(cached_usd),
            price=self,
            cache_write_usd=_round_usd(write_usd),
        )

    def total_usd(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """Only the total of :meth:`cost` (``cost(...).usd``), with one rounding.

        Args:
            input_tokens: As for :meth:`cost`.
            output_tokens: As for :meth:`cost`.
            cached_input_tokens: As for :meth:`cost`.
            cache_write_tokens: As for :meth:`cost`.

        Returns:
            The same total :meth:`cost` reports, in USD rounded to 1e-9.
        """
        return _round_usd(
            self._parts(
                input_tokens, output_tokens, cached_input_tokens, cache_write_tokens
            )[4]
        )

    def _parts(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int,
        cache_write_tokens: int,
    ) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        """Exact (input, cached input, cache write, output, total) USD."""
        cached = min(cached_input_tokens, input_tokens)
        written = min(cache_write_tokens, input_tokens - cached)
        divide, multiply = _CTX.divide, _CTX.multiply
        input_usd = divide(
            multiply(Decimal(input_tokens - cached - written), self._input), _MILLION
        )
        cached_usd = divide(multiply(Decimal(cached), self._cached), _MILLION)
        write_usd = divide(multiply(Decimal(written), self._write), _MILLION)
        output_usd = divide(multiply(Decimal(output_tokens), self._output), _MILLION)
        total = _CTX.add(
            _CTX.add(_CTX.add(input_usd, cached_usd), write_usd), output_usd
        )
        return input_usd, cached_usd, write_usd, output_usd, total


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one call (or of a batch of calls), in USD.

    Attributes:
        usd: Total cost, rounded to 1e-9 USD.
        source: ``"price_table"`` when computed from a :class:`PriceTable`,
            ``"gateway"`` when reported by the gateway.
        model: The priced model id (the table's spelling), or the model passed in
            for gateway costs (may be ``None``).
        input_usd: Cost of the uncached input tokens (``None`` for gateway costs).
        output_usd: Cost of the output tokens (``None`` for gateway costs).
        cached_input_usd: Cost of the cached input tokens (``None`` for gateway
            costs).
        price: The price row used, for ``"price_table"`` costs.
        cache_write_usd: Cost of the cache-write input tokens (``None`` for
            gateway costs).
    """

    usd: float
    source: CostSource
    model: str | None
    input_usd: float | None = None
    output_usd: float | None = None
    cached_input_usd: float | None = None
    price: ModelPrice | None = None
    cache_write_usd: float | None = None

    @property
    def usd_decimal(self) -> Decimal:
        """The total as an exact :class:`~decimal.Decimal` (for exact summing)."""
        return Decimal(repr(self.usd))


class PriceTable:
    """An immutable set of model prices.

    ``table.get(model)`` looks the id up exactly, then case-insensitively
    (``"GPT-4.1"`` finds ``"gpt-4.1"``). Two rows whose ids differ only by case are
    rejected. Iterating a table yields its :class:`ModelPrice` rows in order;
    ``model in table`` uses the same lookup as :meth:`get`.

    Alternative prices (other sources for the same model) are kept apart from the
    default rows: see :meth:`alternatives` and :meth:`use_alternative`.
    """

    __slots__ = ("_alternatives", "_as_of", "_by_lower", "_prices")

    def __init__(
        self,
        prices: Iterable[ModelPrice],
        *,
        alternatives: Iterable[ModelPrice] = (),
        as_of: str | None = None,
    ) -> None:
        """Build a table.

        Args:
            prices: The default price rows, one per model.
            alternatives: Prices from other sources, not used unless chosen.
            as_of: ISO date the table describes, if known.

        Raises:
            PriceTableError: Two rows name the same model (ignoring case), or a
                row is not a :class:`ModelPrice`.
        """
        self._prices: dict[str, ModelPrice] = {}
        self._by_lower: dict[str, ModelPrice] = {}
        for price in prices:
            if not isinstance(price, ModelPrice):
                raise PriceTableError(
                    f"price rows must be ModelPrice objects, got {price!r}"
                )
            key = price.model.lower()
            if key in self._by_lower:
                msg = (
                    f"duplicate price for model {price.model!r} "
                    f"(already have {self._by_lower[key].model!r}); "
                    "keep one row per model id, ignoring case"
                )
                raise PriceTableError(msg)
            self._prices[price.model] = price
            self._by_lower[key] = price
        self._alternatives: tuple[ModelPrice, ...] = tuple(alternatives)
        self._as_of = as_of

    @property
    def as_of(self) -> str | None:
        """ISO date the packaged table describes (``None`` if unknown)."""
        return self._as_of

    def get(self, model: str) -> ModelPrice | None:
        """Find a model's price: exact id first, then case-insensitive.

        Args:
            model: Model id, e.g. ``"gpt-4.1"``.

        Returns:
            The price row, or ``None`` if the model is not in the table.
        """
        price = self._prices.get(model)
        if price is None:
            price = self._by_lower.get(model.lower())
        return price

    def __getitem__(self, model: str) -> ModelPrice:
        """Like :meth:`get`, but raise ``KeyError`` for an unknown model."""
        price = self.get(model)
        if price is None:
            raise KeyError(model)
        return price

    def __contains__(self, model: object) -> bool:
        """Whether ``model`` (a string) has a price, using :meth:`get`'s lookup."""
        return isinstance(model, str) and self.get(model) is not None

    def __iter__(self) -> Iterator[ModelPrice]:
        """Iterate over the default price rows."""
        return iter(self._prices.values())

    def __len__(self) -> int:
        """Number of models with a default price."""
        return len(self._prices)

    def __repr__(self) -> str:
        """Short description listing the model ids."""
        return f"PriceTable(models={list(self._prices)!r}, as_of={self._as_of!r})"

    def __eq__(self, other: object) -> bool:
        """Tables are equal when their rows and alternatives are equal."""
        if not isinstance(other, PriceTable):
            return NotImplemented
        return (
            list(self._prices.values()) == list(other._prices.values())
            and self._alternatives == other._alternatives
        )

    __hash__ = None  # type: ignore[assignment]

    def models(self) -> tuple[str, ...]:
        """The model ids with a default price, in table order."""
        return tuple(self._prices)

    def as_dict(self) -> dict[str, ModelPrice]:
        """A copy of the table as ``{model id: ModelPrice}``."""
        return dict(self._prices)

    def alternatives(self, model: str | None = None) -> tuple[ModelPrice, ...]:
        """Alternative prices recorded for a model (or for all models).

        Args:
            model: Model id (case-insensitive); ``None`` for every alternative.

        Returns:
            The alternative rows, each with its own ``source``.
        """
        if model is None:
            return self._alternatives
        key = model.lower()
        return tuple(p for p in self._alternatives if p.model.lower() == key)

    def use_alternative(self, model: str, source: str | None = None) -> PriceTable:
        """Return a copy of the table that uses an alternative price for a model.

        Args:
            model: Model id (case-insensitive).
            source: The alternative's ``source`` text, needed only when the model
                has more than one alternative.

        Returns:
            A new table; this one is unchanged.

        Raises:
            PriceTableError: No (or more than one matching) alternative.
        """
        candidates = [
            p for p in self.alternatives(model) if source is None or p.source == source
        ]
        if len(candidates) != 1:
            known = [p.source for p in self.alternatives(model)]
            msg = (
                f"expected exactly one alternative price for {model!r}"
                f"{'' if source is None else f' with source {source!r}'}, "
                f"found {len(candidates)}; recorded sources: {known}"
            )
            raise PriceTableError(msg)
        return self._replace_rows([candidates[0]], ())

    def cost(self, model: str, usage: Mapping[str, Any] | None) -> Cost | None:
        """Price a LangChain ``usage_metadata`` dict with this table.

        Same as ``cost_from_usage(model, usage, table=self)``.

        Args:
            model: Model id.
            usage: LangChain ``UsageMetadata``-shaped mapping.

        Returns:
            The cost, or ``None`` for an unknown model or missing usage.
        """
        return cost_from_usage(model, usage, table=self)

    def with_overrides(self, overrides: Overrides) -> PriceTable:
        """Return a copy of the table with some prices replaced or added.

        Args:
            overrides: Either a dict ``{"model": {"input_per_million": ...,
                "output_per_million": ...}}`` (optional keys:
                ``cached_input_per_million``, ``source``, ``source_date``; a
                value may also be a :class:`ModelPrice`), or a path to a JSON
                file holding that dict or the ``prices.json`` shape (a list of
                rows, or an object with a ``"prices"`` list). An overriding row
                replaces the whole row, cached price included, for any model id
                that matches ignoring case.

        Returns:
            A new table; this one is unchanged.
        """
        rows, alternatives = _parse_overrides(overrides)
        return self._replace_rows(rows, alternatives)

    def _replace_rows(
        self, rows: Iterable[ModelPrice], alternatives: Iterable[ModelPrice]
    ) -> PriceTable:
        merged = {p.model.lower(): p for p in self._prices.values()}
        for row in rows:
            merged[row.model.lower()] = row
        return PriceTable(
            merged.values(),
            alternatives=(*self._alternatives, *alternatives),
            as_of=self._as_of,
        )


# --------------------------------------------------------------------- parsing


def _row_from_mapping(
    data: Mapping[str, Any], origin: str, model: str | None = None
) -> ModelPrice:
    if model is None:
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise PriceTableError(
                f"{origin}: each price row needs a 'model' string, got {dict(data)!r}"
            )
    elif "model" in data and data["model"] != model:
        msg = (
            f"{origin}: price for {model!r} has 'model': {data['model']!r}; "
            "drop the field or make it match the key"
        )
        raise PriceTableError(msg)
    unknown = sorted(set(data) - _ROW_FIELDS)
    if unknown:
        msg = (
            f"{origin}: price for {model!r} has unknown field(s) {unknown}; "
            f"allowed fields are {sorted(_ROW_FIELDS)}"
        )
        raise PriceTableError(msg)
    missing = [
        k for k in ("input_per_million", "output_per_million") if data.get(k) is None
    ]
    if missing:
        msg = (
            f"{origin}: price for {model!r} is missing {missing}; "
            "give both input_per_million and output_per_million (USD per 1M tokens)"
        )
        raise PriceTableError(msg)
    try:
        return ModelPrice(
            model=model,
            input_per_million=data["input_per_million"],
            output_per_million=data["output_per_million"],
            cached_input_per_million=data.get("cached_input_per_million"),
            source=data.get("source", _OVERRIDE_SOURCE),
            source_date=data.get("source_date"),
            cache_write_per_million=data.get("cache_write_per_million"),
        )
    except PriceTableError as exc:
        raise PriceTableError(f"{origin}: {exc}") from None


def _rows_from_list(data: object, origin: str, what: str) -> list[ModelPrice]:
    if not isinstance(data, list):
        raise PriceTableError(f"{origin}: {what!r} must be a list of price rows")
    rows: list[ModelPrice] = []
    for item in data:
        if isinstance(item, ModelPrice):
            rows.append(item)
        elif isinstance(item, dict):
            rows.append(_row_from_mapping(item, origin))
        else:
            raise PriceTableError(
                f"{origin}: each price row must be an object, got {item!r}"
            )
    return rows


def _check_header(data: Mapping[str, Any], origin: str) -> None:
    currency = data.get("currency", "USD")
    if currency != "USD":
        raise PriceTableError(
            f"{origin}: currency must be 'USD' (prices are in USD), got {currency!r}"
        )
    unit = data.get("unit", "per 1M tokens")
    if unit != "per 1M tokens":
        raise PriceTableError(
            f"{origin}: unit must be 'per 1M tokens', got {unit!r}; convert the prices"
        )


def _parse_data(data: object, origin: str) -> tuple[list[ModelPrice], list[ModelPrice]]:
    """Parse any accepted override shape into (rows, alternatives)."""
    if isinstance(data, list):
        return _rows_from_list(data, origin, "prices"), []
    if not isinstance(data, dict):
        msg = (
            f"{origin}: expected a JSON object or list of price rows, "
            f"got {type(data).__name__}"
        )
        raise PriceTableError(msg)
    if isinstance(data.get("prices"), list):
        _check_header(data, origin)
        rows = _rows_from_list(data["prices"], origin, "prices")
        alternatives = _rows_from_list(
            data.get("alternatives", []), origin, "alternatives"
        )
        return rows, alternatives
    rows = []
    for model, value in data.items():
        if not isinstance(model, str) or not model:
            raise PriceTableError(f"{origin}: model ids must be strings, got {model!r}")
        if isinstance(value, ModelPrice):
            if value.model.lower() != model.lower():
                msg = (
                    f"{origin}: key {model!r} holds a ModelPrice for "
                    f"{value.model!r}; use the same model id"
                )
                raise PriceTableError(msg)
            rows.append(value)
        elif isinstance(value, dict):
            rows.append(_row_from_mapping(value, origin, model))
        else:
            msg = (
                f"{origin}: price for {model!r} must be an object like "
                '{"input_per_million": 0.2, "output_per_million": 0.6}, '
                f"got {value!r}"
            )
            raise PriceTableError(msg)
    return rows, []


def _read_json_file(path: str | os.PathLike[str], origin: str) -> object:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{origin}: cannot read price file {os.fspath(path)!r}: {exc.strerror}"
        raise PriceTableError(msg) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{origin}: {os.fspath(path)!r} is not valid JSON: {exc}"
        raise PriceTableError(msg) from exc


def _parse_overrides(
    overrides: Overrides,
) -> tuple[list[ModelPrice], list[ModelPrice]]:
    if isinstance(overrides, str | os.PathLike):
        origin = f"price file {os.fspath(overrides)!r}"
        return _parse_data(_read_json_file(overrides, origin), origin)
    if isinstance(overrides, dict) or hasattr(overrides, "items"):
        return _parse_data(dict(overrides), "price overrides")
    msg = (
        "price overrides must be a dict {model: {input_per_million, "
        f"output_per_million}} or a path to a JSON file, got {overrides!r}"
    )
    raise PriceTableError(msg)


# --------------------------------------------------------------------- loading


@cache
def _packaged_table() -> PriceTable:
    origin = "packaged prices.json"
    resource = resources.files("langchain_holysheep").joinpath("data", "prices.json")
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:  # pragma: no cover - packaging
        raise PriceTableError(f"{origin} is missing or broken: {exc}") from exc
    if not isinstance(data, dict):  # pragma: no cover - packaging
        raise PriceTableError(f"{origin} must be a JSON object")
    rows, alternatives = _parse_data(data, origin)
    as_of = data.get("as_of")
    return PriceTable(
        rows, alternatives=alternatives, as_of=as_of if isinstance(as_of, str) else None
    )


@lru_cache(maxsize=8)
def _table_from_env_file(path: str, _mtime_ns: int, _size: int) -> PriceTable:
    origin = f"{PRICES_FILE_ENV_VAR}={path!r}"
    rows, alternatives = _parse_data(_read_json_file(path, origin), origin)
    return _packaged_table()._replace_rows(rows, alternatives)  # noqa: SLF001


def load_price_table(overrides: Overrides | None = None) -> PriceTable:
    """Load the packaged price table, optionally with overrides.

    The packaged ``prices.json`` is read once per process and cached.

    Args:
        overrides: A dict ``{"model": {"input_per_million": ...,
            "output_per_million": ...}}``, or a path to a JSON file holding that
            dict or the ``prices.json`` shape. When ``None``, the file named by
            the ``HOLYSHEEP_PRICES_FILE`` environment variable (if set and
            non-empty) is applied instead; the file is re-read when it changes.

    Returns:
        The price table.

    Raises:
        PriceTableError: The overrides are invalid (negative or non-numeric
            price, missing ``input_per_million``/``output_per_million``, unknown
            field, unreadable or non-JSON file).
    """
    if overrides is not None:
        return _packaged_table().with_overrides(overrides)
    env_path = os.environ.get(PRICES_FILE_ENV_VAR, "").strip()
    if not env_path:
        return _packaged_table()
    try:
        stat = Path(env_path).stat()
    except OSError as exc:
        msg = (
            f"{PRICES_FILE_ENV_VAR}={env_path!r}: cannot read price file: "
            f"{exc.strerror}; fix the path or unset the variable"
        )
        raise PriceTableError(msg) from exc
    return _table_from_env_file(env_path, stat.st_mtime_ns, stat.st_size)


# --------------------------------------------------------------------- costing


def _token_count(value: object, what: str) -> int:
    if type(value) is int and value >= 0:  # the usual case, first
        return value
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"usage {what} must be an int, got {value!r}")  # noqa: TRY004
    if value < 0:
        raise ValueError(f"usage {what} must not be negative, got {value!r}")
    return value


def _usage_tokens(usage: Mapping[str, Any]) -> tuple[int, int, int, int] | None:
    """(input, cached input, output, cache-write) tokens, or None when none."""
    if usage.get("input_tokens") is None and usage.get("output_tokens") is None:
        return None
    input_tokens = _token_count(usage.get("input_tokens"), "input_tokens")
    output_tokens = _token_count(usage.get("output_tokens"), "output_tokens")
    details = usage.get("input_token_details") or {}
    cached = _token_count(details.get("cache_read"), "input_token_details.cache_read")
    written = _token_count(
        details.get("cache_creation"), "input_token_details.cache_creation"
    )
    return input_tokens, min(cached, input_tokens), output_tokens, written


def _reported_usd(value: object) -> float | None:
    """A reported cost as a float, or ``None`` unless it is a finite number >= 0."""
    if value is None:  # the usual case, first
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _exact_usd(usd: float) -> float:
    """A reported float cost, as its shortest decimal rounded to 1e-9 USD."""
    return _round_usd(Decimal(repr(usd)))


def _reported_cost(usd: float, source: CostSource, model: str | None) -> Cost:
    return Cost(usd=_exact_usd(usd), source=source, model=model)


def cost_from_usage(
    model: str | None,
    usage_metadata: Mapping[str, Any] | None,
    *,
    gateway_cost_usd: float | None = None,
    table: PriceTable | None = None,
) -> Cost | None:
    """Cost of one call from LangChain ``usage_metadata``.

    Args:
        model: The model id that served the call.
        usage_metadata: ``AIMessage.usage_metadata``: ``input_tokens``,
            ``output_tokens``, and optionally ``input_token_details["cache_read"]``
            and ``["cache_creation"]`` and ``output_token_details["reasoning"]``.
        gateway_cost_usd: The gateway's own cost for the call. When given it is
            returned as is (``source="gateway"``) and the table is not used.
        table: Price table; defaults to :func:`load_price_table` ``()``.

    Returns:
        The cost, or ``None`` when the model is unknown or there is no usage.
        Never a guess.

    Raises:
        ValueError: ``gateway_cost_usd`` is negative or not finite, or a token
            count is negative or not an int.
    """
    if gateway_cost_usd is not None:
        reported = _reported_usd(gateway_cost_usd)
        if reported is None:
            msg = (
                "gateway_cost_usd must be a finite number >= 0, "
                f"got {gateway_cost_usd!r}"
            )
            raise ValueError(msg)
        return _reported_cost(reported, "gateway", model)
    return _table_cost(_priced_usage(model, usage_metadata, table, None))


def resolve_call_cost(
    model: str | None,
    usage: Mapping[str, Any] | None,
    response_metadata: Mapping[str, Any],
    table: PriceTable | None = None,
    *,
    requested_model: str | None = None,
) -> Cost | None:
    """The cost of one finished call: the one rule every caller uses.

    In order of preference:

    1. ``response_metadata["cost_usd"]``, when the model already reported a
       cost (a finite number >= 0); its ``response_metadata["cost_source"]``
       says where it came from (``"price_table"``, else ``"gateway"``);
    2. the gateway's own cost, ``response_metadata["token_usage"]["cost_usd"]``
       (``source="gateway"``);
    3. the price table for ``model``, then, when that has no price and
       ``requested_model`` differs, for ``requested_model``: gateways often
       answer with a dated id (``"gpt-4.1-2025-04-14"``) that the table lists
       under the id that was asked for.

    Reported costs that are not finite numbers >= 0 are ignored, never trusted.

    Args:
        model: The model that served the call (``response_metadata["model_name"]``).
        usage: The call's ``AIMessage.usage_metadata``.
        response_metadata: The call's ``AIMessage.response_metadata``.
        table: Price table; defaults to :func:`load_price_table` ``()``.
        requested_model: The model id that was asked for, priced when the
            served one has no price.

    Returns:
        The cost, or ``None`` when the call cannot be priced (no reported
        cost, no price for the model, or no usage).

    Raises:
        ValueError: The default price table cannot be loaded (a broken
            ``HOLYSHEEP_PRICES_FILE``), or a token count is negative or not an int.
    """
    reported = _reported_call_usd(response_metadata)
    if reported is not None:
        return _reported_cost(*reported, model)
    return _table_cost(_priced_usage(model, usage, table, requested_model))


def _table_cost(
    priced: tuple[ModelPrice, tuple[int, int, int, int]] | None,
) -> Cost | None:
    """The price table's :class:`Cost` of what :func:`_priced_usage` found."""
    if priced is None:
        return None
    price, (input_tokens, cached, output_tokens, written) = priced
    return price.cost(input_tokens, output_tokens, cached, written)


def _reported_call_usd(
    response_metadata: Mapping[str, Any],
) -> tuple[float, CostSource] | None:
    """Steps 1 and 2 of :func:`resolve_call_cost`: a cost already reported."""
    reported = _reported_usd(response_metadata.get("cost_usd"))
    if reported is not None:
        source = response_metadata.get("cost_source")
        label: CostSource = "price_table" if source == "price_table" else "gateway"
        return reported, label
    token_usage = response_metadata.get("token_usage")
    if isinstance(token_usage, dict):
        reported = _reported_usd(token_usage.get("cost_usd"))
        if reported is not None:
            return reported, "gateway"
    return None


def _priced_usage(
    model: str | None,
    usage: Mapping[str, Any] | None,
    table: PriceTable | None,
    requested_model: str | None,
) -> tuple[ModelPrice, tuple[int, int, int, int]] | None:
    """Step 3 of :func:`resolve_call_cost`: the price and the usage's token counts.

    The price of ``model``, else of ``requested_model`` when it differs; the
    counts as :func:`_usage_tokens` reads them. ``None`` when either is missing.
    """
    if not usage or not (model or requested_model):
        return None
    if table is None:
        table = load_price_table()
    price = table.get(model) if model else None
    if price is None and requested_model and requested_model != model:
        price = table.get(requested_model)
    if price is None:
        return None
    tokens = _usage_tokens(usage)
    return None if tokens is None else (price, tokens)


def resolve_call_usd(
    model: str | None,
    usage: Mapping[str, Any] | None,
    response_metadata: Mapping[str, Any],
    *,
    requested_model: str | None = None,
) -> tuple[float, CostSource] | None:
    """``(usd, source)`` of :func:`resolve_call_cost` with the default table.

    The same rule and the same total, without the cost's parts: what a chat
    call puts in its ``response_metadata`` (``cost_usd``, ``cost_source``).

    Args:
        model: As for :func:`resolve_call_cost`.
        usage: As for :func:`resolve_call_cost`.
        response_metadata: As for :func:`resolve_call_cost`.
        requested_model: As for :func:`resolve_call_cost`.

    Returns:
        The total cost in USD and its source, or ``None`` when
        :func:`resolve_call_cost` returns ``None``.

    Raises:
        ValueError: As for :func:`resolve_call_cost`.
    """
    reported = _reported_call_usd(response_metadata)
    if reported is not None:
        usd, source = reported
        return _exact_usd(usd), source
    priced = _priced_usage(model, usage, None, requested_model)
    if priced is None:
        return None
    price, (input_tokens, cached, output_tokens, written) = priced
    return price.total_usd(input_tokens, output_tokens, cached, written), "price_table"


def monthly_cost(
    model: str,
    requests_per_month: int,
    input_tokens: int,
    output_tokens: int,
    table: PriceTable | None = None,
    *,
    cached_input_tokens: int = 0,
) -> Cost | None:
    """Estimated monthly cost of a steady workload.

    Args:
        model: Model id.
        requests_per_month: Number of calls per month.
        input_tokens: Input tokens per call (cached ones included).
        output_tokens: Output tokens per call (reasoning included).
        table: Price table; defaults to :func:`load_price_table` ``()``.
        cached_input_tokens: Cached input tokens per call (part of
            ``input_tokens``).

    Returns:
        The monthly cost (``source="price_table"``), or ``None`` for an unknown
        model.

    Raises:
        ValueError: A count is negative or not an int.
    """
    requests = _token_count(requests_per_month, "requests_per_month")
    usage = {
        "input_tokens": _token_count(input_tokens, "input_tokens") * requests,
        "output_tokens": _token_count(output_tokens, "output_tokens") * requests,
        "input_token_details": {
            "cache_read": _token_count(cached_input_tokens, "cached_input_tokens")
            * requests
        },
    }
    return cost_from_usage(model, usage, table=table)
