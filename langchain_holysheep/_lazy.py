"""Public names that load on first use (PEP 562), for a package's ``__init__``.

A package lists its public names and the modules that define them; the module
``__getattr__`` this builds imports a module only when one of its names is first
read, then caches the value in the package's namespace, so later reads are plain
attribute lookups. Used where importing the package must stay cheap (the package
root, which the pytest plugin loads, and ``batch``, which must not load ``openai``
or Ray).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build a package's module ``__getattr__`` and ``__dir__``.

    Args:
        package: The package's name, for the error message.
        exports: Each public name and the module that defines it.
        namespace: The package's ``globals()``: where a loaded name is cached.

    Returns:
        ``(__getattr__, __dir__)``, to be assigned at the package's top level.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook's name
        module = exports.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the PEP 562 hook's name
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
