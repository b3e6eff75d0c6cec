"""Fixed-width text tables: the one renderer behind the tracker's and the CLI's.

The first column is left-aligned and the others right-aligned, cells are joined
by ``" | "``, a ``-+-`` rule follows the header (and comes before an optional
total row), and trailing spaces are stripped from every line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["render_table"]


def render_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    total: Sequence[str] | None = None,
) -> str:
    """Render rows of text cells as an aligned table.

    Args:
        header: The column titles.
        rows: The body rows, each with one cell per column.
        total: A last row set apart by a second rule (e.g. ``TOTAL``), if any.

    Returns:
        The table, one line per row, with no trailing newline.
    """
    every = [*rows] if total is None else [*rows, total]
    widths = [max(len(h), *(len(r[i]) for r in every)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return " | ".join((first, *rest)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    lines = [line(header), rule, *(line(r) for r in rows)]
    if total is not None:
        lines += [rule, line(total)]
    return "\n".join(lines)
