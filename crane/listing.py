"""Paginated lists (tags, catalog) with ``n``/``last`` and the ``Link`` header, as the spec orders them.

A repository's tags are kept sorted in memory, so a page is a bisect and a slice; the
catalog pages from the tree's sorted catalog files by the same contract
(``pulp_registry.published_catalog.CatalogIndex.page``).
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Sequence


def paginate(items: Sequence[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Items after ``last`` in lexical order, at most ``n`` of them, and whether more follow."""
    start = bisect_right(items, last) if last is not None else 0
    if n is None:
        return list(items[start:]), False
    page = list(items[start:start + n])
    return page, n > 0 and start + n < len(items)
