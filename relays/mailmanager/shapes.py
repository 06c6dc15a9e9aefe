"""Mail Manager members as the botocore model shapes them: patterns, ranges, the
`Authentication` union, and `AwsError`, the one exception every operation raises.

Each check names the member and the rule it breaks, as AWS's own ValidationException does.
"""

import re

from relays import validators as v

RELAY_ID = re.compile(r"[a-zA-Z0-9-]{1,100}")
RELAY_NAME = re.compile(r"[a-zA-Z0-9_-]{1,100}")
SERVER_NAME = re.compile(r"[a-zA-Z0-9.-]{1,100}")
TAGGABLE_ARN = re.compile(
    r"arn:aws(|-cn|-us-gov|-eusc):ses:[a-z0-9-]{1,20}:[0-9]{12}:(mailmanager-|addon-).{1,970}"
)
SECRET_ARN = v.SECRET_ARN  # shared with the admin (relays.validators)


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
    if value is None and not required:
        return None
    if type(value) is not int or not 1 <= value <= 65535:
        raise invalid("ServerPort must be an integer from 1 to 65535")
    return value


def authentication_in(body, relay=None, required=True):
    """Model fields for the `Authentication` union, or None when it is absent (update)."""
    value = body.get("Authentication")
    if value is None and not required:
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
    if not isinstance(arn, str) or not SECRET_ARN.fullmatch(arn):
        raise invalid(f"Authentication.SecretArn must match {SECRET_ARN.pattern}")
    if relay is not None and arn == relay.own_secret_arn:
        return {}  # written back as read: the stored GreenArrow credentials stay
    return {"destination_username": None, "destination_password": None, "secret_arn": arn}


def authentication_out(relay):
    """The `Authentication` union for a relay: its SecretArn, the ARN of its stored
    credentials, or NoAuthentication."""
    if relay.secret_arn:
        return {"SecretArn": relay.secret_arn}
    if relay.destination_username is not None or relay.destination_password is not None:
        return {"SecretArn": relay.own_secret_arn}
    return {"NoAuthentication": {}}
