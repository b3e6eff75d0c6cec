"""The old name of :mod:`langchain_holysheep.catalog`, kept so imports keep working.

``from langchain_holysheep.models import list_models`` goes on working; new code
imports :mod:`langchain_holysheep.catalog`. Every public name of the catalog is
re-exported here unchanged (the same objects, sharing the same cache).
"""

from __future__ import annotations

from langchain_holysheep.catalog import (
    DEFAULT_CATALOG_TTL,
    alist_models,
    amodel_ids_for_config,
    cached_model_ids,
    clear_model_cache,
    list_models,
    model_ids_for_config,
    model_not_found_error,
    suggest_models,
)

__all__ = [
    "DEFAULT_CATALOG_TTL",
    "alist_models",
    "amodel_ids_for_config",
    "cached_model_ids",
    "clear_model_cache",
    "list_models",
    "model_ids_for_config",
    "model_not_found_error",
    "suggest_models",
]
