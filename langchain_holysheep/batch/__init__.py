"""Bulk runs: ``holysheep batch`` and :func:`run_batch` (work in progress)."""

from __future__ import annotations

__all__: list[str] = []
