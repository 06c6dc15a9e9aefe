"""Mail Manager members as the botocore model shapes them: patterns, ranges, the
`Authentication` union, and `AwsError`, the one exception every operation raises.

Each check names the member and the rule it breaks, as AWS's own ValidationException does.
Patterns are the model's, anchored, with its ASCII meaning: character classes are spelled out
(never `\\d`, `\\w` or `\\s`, which match any Unicode digit, letter or space in Python), and the
model's `.` (ECMAScript: any character but a line terminator) is `[^\\n\\r\\u2028\\u2029]`.
A JSON null member is an absent one (awsJson); `views.members` removes them first.
"""

import re

from relays import validators as v
from relays.models import RelayServer

RELAY_ID = re.compile(r"[a-zA-Z0-9-]{1,100}")
RELAY_NAME = re.compile(r"[a-zA-Z0-9_-]{1,100}")
SERVER_NAME = re.compile(r"[a-zA-Z0-9.-]{1,100}")
# ECMAScript's `.`: every character but the line terminators \n, \r, U+2028 and U+2029.
ANY_BUT_LINE_TERMINATOR = "[^\n\r\u2028\u2029]"
# The model's pattern, as messages quote it, and as it is matched.
TAGGABLE_ARN_PATTERN = (
    "arn:aws(|-cn|-us-gov|-eusc):ses:[a-z0-9-]{1,20}:[0-9]{12}:(mailmanager-|addon-).+"
)
TAGGABLE_ARN = re.compile(TAGGABLE_ARN_PATTERN.removesuffix(".+") + ANY_BUT_LINE_TERMINATOR + "+")
TAGGABLE_ARN_LENGTH = (20, 1011)
SECRET_ARN = v.SECRET_ARN  # shared with the admin (relays.validators)
# The model sets no length for SecretArn; the column holds 2048 characters (a Secrets Manager
# ARN is far shorter: its secret name is at most 512).
SECRET_ARN_MAX = RelayServer._meta.get_field("secret_arn").max_length


class AwsError(Exception):
    """A refused call: `code` is the modelled error name, `status` its HTTP status."""

    def __init__(self, code, message, status=400):
        self.code, self.status = code, status
        super().__init__(message)


def invalid(message):
    return AwsError("ValidationException", message)


def string(body, member, pattern, required=True):
    """A string member matching `pattern`; None when absent and not required."""
    value = body.get(member)
    if value is None:
        if required:
            raise invalid(f"{member} is required")
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise invalid(f"{member} must match {pattern.pattern}")
    return value


def port(body, required=True):
    value = body.get("ServerPort")
    if value is None:
        if required:
            raise invalid("ServerPort is required")
        return None
    if type(value) is not int or not 1 <= value <= 65535:
        raise invalid("ServerPort must be an integer from 1 to 65535")
    return value


def authentication_in(body, required=True):
    """Model fields for the `Authentication` union, or None when it is absent (update).

    The fields are what is written; a SecretArn that names a relay's own stored credentials
    is resolved by `keeps_stored_credentials` once the relay is known."""
    value = body.get("Authentication")
    if value is None:
        if required:
            raise invalid("Authentication is required")
        return None
    if (
        not isinstance(value, dict)
        or len(value) != 1
        or next(iter(value)) not in {"SecretArn", "NoAuthentication"}
    ):
        raise invalid("Authentication must have exactly one member: SecretArn or NoAuthentication")
    if "NoAuthentication" in value:
        if value["NoAuthentication"] != {}:
            raise invalid("Authentication.NoAuthentication must be an empty structure")
        return {"destination_username": None, "destination_password": None, "secret_arn": None}
    arn = value["SecretArn"]
    if not isinstance(arn, str):
        raise invalid(f"Authentication.SecretArn must be a string matching {SECRET_ARN.pattern}")
    if len(arn) > SECRET_ARN_MAX:
        raise invalid(f"Authentication.SecretArn must be at most {SECRET_ARN_MAX} characters long")
    if not SECRET_ARN.fullmatch(arn):
        raise invalid(f"Authentication.SecretArn must match {SECRET_ARN.pattern}")
    return {"destination_username": None, "destination_password": None, "secret_arn": arn}


def keeps_stored_credentials(relay, fields):
    """A relay's own stored credentials' SecretArn written back as read: the stored GreenArrow
    credentials stay. With none stored, the ARN is an external secret like any other."""
    has_stored = relay.destination_username is not None or relay.destination_password is not None
    return has_stored and fields.get("secret_arn") == relay.own_secret_arn


def authentication_out(relay):
    """The `Authentication` union for a relay: its SecretArn, the ARN of its stored
    credentials, or NoAuthentication."""
    if relay.secret_arn:
        return {"SecretArn": relay.secret_arn}
    if relay.destination_username is not None or relay.destination_password is not None:
        return {"SecretArn": relay.own_secret_arn}
    return {"NoAuthentication": {}}
