"""Signed page tokens, shared by every list of both APIs.

A token is signed with SECRET_KEY (a client can neither forge nor alter one) and stateless (any
app server holding the same SECRET_KEY can serve the next page). It carries the position to go
on from (for tables the last id seen, so the next page is `WHERE id > last ORDER BY id`) and the
number of the page it opens. Each list signs with its own salt, so a token of one list is
refused by every other.
"""

from django.core import signing
from django.db.models import Subquery


class InvalidToken(ValueError):
    """The string is not a token of this list (forged, altered, or another list's)."""


def _salt(list_key):
    return f"relays.page_token.{list_key}"


def make_token(list_key, position, page):
    return signing.dumps({"after": position, "page": page}, salt=_salt(list_key))


def read_token(list_key, token):
    """(position, page) from a token of this list; InvalidToken for any other string."""
    if not isinstance(token, str):
        raise InvalidToken(f"not a page token of {list_key}")
    try:
        data = signing.loads(token, salt=_salt(list_key))
        after, page = data["after"], data["page"]
    except (signing.BadSignature, KeyError, TypeError, ValueError):  # UnicodeError is a ValueError
        raise InvalidToken(f"not a page token of {list_key}") from None
    # make_token writes two integers. Anything else under a valid signature (another release's
    # format, a value signed for some other purpose) is not a token of this list: no coercing
    # (int() took "12", 1.9 and false, and raised OverflowError on Infinity, a 500 in both APIs).
    if type(after) is not int or type(page) is not int:
        raise InvalidToken(f"not a page token of {list_key}")
    return after, page


def page_of(queryset, after=None, offset=0, limit=100):
    """The rows of `queryset` after key `after` (or from `offset`), `limit` of them, ordered by
    primary key.

    The page's keys are found first on the primary-key index alone, and only those rows are
    then read (and joined with their base row, for a VirtualMTA type): a join ordered by key
    would otherwise walk the base table's index from its start up to the page, because a merge
    join cannot skip ahead on both sides. So a page deep in 100,000 rows costs what the first
    costs (by key; an OFFSET still walks the narrow key index).
    """
    queryset = queryset.order_by("pk")
    keys = queryset.values("pk")
    if after is not None:
        keys = keys.filter(pk__gt=after)
    return queryset.filter(pk__in=Subquery(keys[offset : offset + limit]))
