"""Signed page tokens, shared by every list of both APIs.

A token is signed with SECRET_KEY (a client can neither forge nor alter one) and stateless (any
app server holding the same SECRET_KEY can serve the next page). It carries the position to go
on from (for tables the last id seen, so the next page is `WHERE id > last ORDER BY id`) and the
number of the page it opens. Each list signs with its own salt, so a token of one list is
refused by every other.
"""

from django.core import signing


class InvalidToken(ValueError):
    """The string is not a token of this list (forged, altered, or another list's)."""


def _salt(list_key):
    return f"relays.page_token.{list_key}"


def make_token(list_key, position, page):
    return signing.dumps({"after": position, "page": page}, salt=_salt(list_key))


def read_token(list_key, token):
    """(position, page) from a token of this list; InvalidToken for any other string."""
    try:
        data = signing.loads(token, salt=_salt(list_key))
        return int(data["after"]), int(data["page"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise InvalidToken(f"not a page token of {list_key}") from None
