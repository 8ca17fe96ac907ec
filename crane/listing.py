"""Paginated lists (tags, catalog) with ``n``/``last`` and the ``Link`` header, as the spec orders them.

Lists are kept sorted in memory, so a page is a bisect and a slice.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Mapping, Sequence
from urllib.parse import urlencode

from pulp_registry.registry_errors import PaginationNumberInvalid


def page_args(args: Mapping[str, str]) -> tuple[int | None, str | None]:
    """``n`` (None: everything) and ``last`` from the query string; a bad ``n`` is refused."""
    raw_n = args.get("n")
    n: int | None = None
    if raw_n is not None and raw_n != "":
        if not raw_n.isdigit():
            raise PaginationNumberInvalid(f"n: {raw_n!r} is not a non-negative integer")
        n = int(raw_n)
    return n, args.get("last") or None


def paginate(items: Sequence[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Items after ``last`` in lexical order, at most ``n`` of them, and whether more follow."""
    start = bisect_right(items, last) if last is not None else 0
    if n is None:
        return list(items[start:]), False
    page = list(items[start:start + n])
    return page, n > 0 and start + n < len(items)


def next_link(path: str, page: Sequence[str], n: int) -> str:
    """``Link`` value pointing at the page after ``page`` (a URL relative to the host, as distribution sends)."""
    return f'<{path}?{urlencode({"last": page[-1], "n": n})}>; rel="next"'
