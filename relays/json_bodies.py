"""Request bodies as strict JSON, for both API facades: a key given twice, or NaN / Infinity
(which Python's json module accepts, RFC 8259 does not), is refused rather than silently taken
(the last duplicate would win; a non-finite number would reach the rules as a float)."""

import json


def _no_duplicates(pairs):
    found = {}
    for key, value in pairs:
        if key in found:
            raise ValueError("a key is given twice")
        found[key] = value
    return found


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def loads(text):
    """`text` parsed; ValueError (json.JSONDecodeError is one) when it is not strict JSON."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
