"""GreenArrow list pages: `page` (0-based) or `page_token`, a fixed `per_page`, ordered by id.

A page token is signed (a client cannot forge or alter one), stateless (it carries the last id
seen, so any server instance can serve the next page) and keyset-based: the next page is
`WHERE id > last ORDER BY id LIMIT n`, which costs the same on page 1 as on page 10,000.
"""

import math
import re

from django.conf import settings
from django.core import signing

from relays.errors import InvalidRequest

_PAGE = re.compile(r"[0-9]{1,9}")


def _salt(list_key):
    # A token of one list is refused by every other list.
    return f"relays.page_token.{list_key}"


def make_token(list_key, last_id, page):
    return signing.dumps({"after": last_id, "page": page}, salt=_salt(list_key))


def read_token(list_key, token):
    try:
        data = signing.loads(token, salt=_salt(list_key))
        after, page = data["after"], data["page"]
    except (signing.BadSignature, KeyError, TypeError):
        raise InvalidRequest("page_token is not a valid page token for this list") from None
    return after, page


def paginate(queryset, params, list_key, fields=("id", "name")):
    """One list page as `{list_key: [...], "pagination": {...}}` (two queries: count, page).

    `params` is the query string; besides `page` or `page_token` it may hold nothing the
    caller has not already consumed (filters), so a misspelt parameter is not silently ignored.
    """
    per_page = settings.GREENARROW_PER_PAGE
    if "page" in params and "page_token" in params:
        raise InvalidRequest("give page or page_token, not both")
    queryset = queryset.order_by("id")
    rows = queryset.values(*fields)
    if "page_token" in params:
        after, page = read_token(list_key, params["page_token"])
        rows = rows.filter(id__gt=after)
        offset = 0
    else:
        raw = params.get("page", "0")
        if not _PAGE.fullmatch(raw):
            raise InvalidRequest("page must be an integer from 0 to 999999999")
        page = int(raw)
        offset = page * per_page
    total = queryset.count()
    items = list(rows[offset : offset + per_page + 1])
    more = len(items) > per_page
    items = items[:per_page]
    return {
        list_key: items,
        "pagination": {
            "page": page,
            "per_page": per_page,
            "num_pages": max(1, math.ceil(total / per_page)),
            "num_records": total,
            "next_page_token": make_token(list_key, items[-1]["id"], page + 1) if more else None,
        },
    }
