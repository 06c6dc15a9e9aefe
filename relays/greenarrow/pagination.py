"""GreenArrow list pages: `page` (0-based) or `page_token`, a fixed `per_page`, ordered by id.

Page tokens come from `relays.tokens`. For tables they are keyset-based: the next page is
`WHERE id > last ORDER BY id LIMIT n`, which costs the same on page 1 as on page 10,000 and does
not skip records when earlier ones are deleted. For short computed lists (`used_by`) the token
carries an offset.
"""

import math
import re
import threading
from collections import OrderedDict

from django.conf import settings

from relays.errors import InvalidRequest
from relays.tokens import InvalidToken, make_token, page_of, read_token

_PAGE = re.compile(r"[0-9]{1,9}")


def _read_position(list_key, params):
    """(position from the token or None, page number) from the query parameters."""
    if "page" in params and "page_token" in params:
        raise InvalidRequest("give page or page_token, not both")
    if "page_token" in params:
        try:
            return read_token(list_key, params["page_token"])
        except InvalidToken:
            raise InvalidRequest("page_token is not a valid page token for this list") from None
    raw = params.get("page", "0")
    if not _PAGE.fullmatch(raw):
        raise InvalidRequest("page must be an integer from 0 to 999999999")
    return None, int(raw)


def _answer(list_key, items, page, total, next_token):
    return {
        list_key: items,
        "pagination": {
            "page": page,
            "per_page": settings.GREENARROW_PER_PAGE,
            "num_pages": max(1, math.ceil(total / settings.GREENARROW_PER_PAGE)),
            "num_records": total,
            "next_page_token": next_token,
        },
    }


class PageStarts:
    """The first key of `page=N` pages, remembered per process while the list's `RecordCount`
    version has not moved (no insert or delete since). A deep `page=` then costs what a page
    token costs instead of an OFFSET walk over the index; any write makes a new version, and
    entries of old versions simply age out."""

    def __init__(self, max_entries=4096):
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key):
        with self._lock:
            return self._entries.get(key)

    def remember(self, key, start):
        with self._lock:
            self._entries[key] = start
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self):
        with self._lock:
            self._entries.clear()


page_starts = PageStarts()


def paginate(queryset, params, list_key, fields=("id", "name"), counted=None):
    """One page of a table as `{list_key: [...], "pagination": {...}}`.

    Ordered by the primary key. The page's keys are found first on the primary-key index alone
    (`pk > last` for a token, OFFSET for `page=N`), and only those rows are then joined with
    their base row: a join ordered by key would otherwise walk the base table's index from its
    start up to the page (a merge join cannot skip ahead on both sides).

    `counted` is (total, version) from `RecordCount` for an unfiltered list: then the total is
    not counted and deep `page=` starts are remembered (`PageStarts`). Two queries, three for a
    `page=N` not yet remembered.
    """
    per_page = settings.GREENARROW_PER_PAGE
    after, page = _read_position(list_key, params)
    offset = 0 if after is not None else page * per_page
    if offset and counted is not None:
        cache_key = (list_key, counted[1], page)
        start = page_starts.get(cache_key)
        if start is None:
            keys = queryset.order_by("pk").values_list("pk", flat=True)
            start = next(iter(keys[offset : offset + 1]), None)
            if start is not None:
                page_starts.remember(cache_key, start)
        if start is not None:  # else the page is past the end, and empty
            after, offset = start - 1, 0
    items = list(page_of(queryset, after, offset, per_page + 1).values(*fields))
    total = queryset.count() if counted is None else counted[0]
    more = len(items) > per_page
    items = items[:per_page]
    return _answer(
        list_key,
        items,
        page,
        total,
        make_token(list_key, items[-1]["id"], page + 1) if more else None,
    )


def paginate_list(fetch, params, list_key):
    """One page of a computed list, `fetch(offset, limit) -> (total, items)`; its token carries
    an offset."""
    per_page = settings.GREENARROW_PER_PAGE
    offset, page = _read_position(list_key, params)
    if offset is None:
        offset = page * per_page
    total, items = fetch(offset, per_page)
    end = offset + per_page
    return _answer(
        list_key,
        items,
        page,
        total,
        make_token(list_key, end, page + 1) if end < total else None,
    )
