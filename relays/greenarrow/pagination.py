"""GreenArrow list pages: `page` (0-based) or `page_token`, a fixed `per_page`, ordered by id.

Page tokens come from `relays.tokens`. For tables they are keyset-based: the next page is
`WHERE id > last ORDER BY id LIMIT n`, which costs the same on page 1 as on page 10,000 and does
not skip records when earlier ones are deleted. For short computed lists (`used_by`) the token
carries an offset.
"""

import math
import re

from django.conf import settings

from relays.errors import InvalidRequest
from relays.tokens import InvalidToken, make_token, read_token

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


def paginate(queryset, params, list_key, fields=("id", "name")):
    """One page of a table as `{list_key: [...], "pagination": {...}}` (two queries: count, page)."""
    per_page = settings.GREENARROW_PER_PAGE
    after, page = _read_position(list_key, params)
    queryset = queryset.order_by("id")
    rows = queryset.values(*fields)
    if after is not None:
        rows, offset = rows.filter(id__gt=after), 0
    else:
        offset = page * per_page
    total = queryset.count()
    items = list(rows[offset : offset + per_page + 1])
    more = len(items) > per_page
    items = items[:per_page]
    return _answer(
        list_key,
        items,
        page,
        total,
        make_token(list_key, items[-1]["id"], page + 1) if more else None,
    )


def paginate_list(items, params, list_key):
    """One page of an already computed list; its token carries an offset."""
    per_page = settings.GREENARROW_PER_PAGE
    offset, page = _read_position(list_key, params)
    if offset is None:
        offset = page * per_page
    end = offset + per_page
    more = end < len(items)
    return _answer(
        list_key,
        items[offset:end],
        page,
        len(items),
        make_token(list_key, end, page + 1) if more else None,
    )
