"""The vendor's field rules, one small function each.

Every message is a predicate ("must be ...") so a facade can put the field's path in front of
it: `destination.port must be an integer from 1 to 65535`. The same functions serve the
GreenArrow serializers, the model fields (and so the admin) and the Mail Manager facade.
"""

import ipaddress
import re

from django.conf import settings
from django.core.exceptions import ValidationError

NAME_MAX = 200
HOSTNAME_MAX = 200
CREDENTIAL_MAX = 200
# Throttle limits and other counters are stored in a 32-bit integer column on every database.
INT32_MAX = 2**31 - 1
# Record ids are 64-bit signed integers in every supported database: a larger one names nothing
# (and SQLite cannot even bind it).
ID_MAX = 2**63 - 1


def is_record_id(value):
    """Whether `value` (an int, or text of ASCII digits) could be the id of a stored record."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            return False
        value = int(value)
    return type(value) is int and 1 <= value <= ID_MAX


_NAME_CHARS = re.compile(r"[\x20-\x7e]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_HOSTNAME_CHARS = re.compile(r"[A-Za-z0-9.-]*")
_ALNUM = re.compile(r"[A-Za-z0-9]")


def _length(value, low, high):
    if not low <= len(value) <= high:
        raise ValidationError(f"must be from {low} to {high} characters long")


# --- VirtualMTA names (shared by relay servers, IP addresses and routing rules) ---


def name_length(value):
    _length(value, 1, NAME_MAX)


def name_characters(value):
    if not _NAME_CHARS.fullmatch(value) or set(value) & {",", "#", "@"}:
        raise ValidationError(
            "must contain only ASCII characters 0x20-0x7e, excluding comma, pound sign and at-sign"
        )


def name_not_padded(value):
    if value != value.strip():
        raise ValidationError("must not have leading or trailing whitespace")


def name_not_integer(value):
    # An integer name could be mistaken for an id wherever a reference takes either.
    if _INTEGER.fullmatch(value.strip()):
        raise ValidationError("must not be an integer")


NAME_VALIDATORS = [name_length, name_characters, name_not_padded, name_not_integer]


# --- Hostnames (HELO name, destination server) ---


def hostname_length(value):
    _length(value, 1, HOSTNAME_MAX)


def hostname_characters(value):
    # The vendor lists only the length and the first/last character rules; a host name (RFC
    # 1123) or an IPv4 literal never needs more than letters, digits, '.' and '-'. Anything
    # else would be sent verbatim to an SMTP server, and Postfix's configuration, which the
    # compiler writes these into, takes no more (relays.holds.POSTFIX_HOSTNAME).
    if not _HOSTNAME_CHARS.fullmatch(value):
        raise ValidationError("must contain only letters, digits, '.' and '-'")


def hostname_alnum_ends(value):
    if value and not (_ALNUM.fullmatch(value[0]) and _ALNUM.fullmatch(value[-1])):
        raise ValidationError("must start and end with a letter or number")


HOSTNAME_VALIDATORS = [hostname_length, hostname_characters, hostname_alnum_ends]


# --- Addresses, ports, credentials ---


def ipv4_dotted(value):
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValidationError("must be a valid IPv4 address in dotted-decimal notation") from None


def credential_length(value):
    if len(value) > CREDENTIAL_MAX:
        raise ValidationError(f"must be at most {CREDENTIAL_MAX} characters long")


# --- Text hygiene: one rule each, used by every door ---

# C0 and C1 controls (CR, LF, NUL, ...), DEL, and the Unicode bidirectional controls that make
# text display in another order than it is stored (U+061C, U+200E/F, U+202A-E, U+2066-9).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def storable(value):
    """Text that every database stores and every encoder accepts: no NUL (PostgreSQL refuses
    it) and no unpaired surrogate (not UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            "must be text without NUL characters or unpaired surrogates"
        ) from None
    if "\x00" in value:
        raise ValidationError("must be text without NUL characters or unpaired surrogates")


def no_control_characters(value):
    """For text that reaches an SMTP command or a configuration file (credentials, names,
    hostnames): a CR/LF would start a new command or line there."""
    storable(value)
    if _CONTROL.search(value):
        raise ValidationError(
            "must not contain control characters (such as CR, LF or NUL) "
            "or bidirectional text controls"
        )


def is_storable(value):
    try:
        storable(value)
    except ValidationError:
        return False
    return True


def credential_edges(value):
    """Postfix trims the spaces around a value of its SASL password map: a username or password
    beginning or ending with one would be sent without it."""
    if value != value.strip(" "):
        raise ValidationError("must not begin or end with a space (Postfix would drop it)")


def username_characters(value):
    """Postfix's SASL password map holds `username:password`: a ':' in the username would cut
    it there. An empty username is no username (null: no authentication)."""
    if ":" in value:
        raise ValidationError("must not contain ':' (Postfix separates the password with it)")
    if not value:
        raise ValidationError("must not be empty (null: no authentication)")


CREDENTIAL_VALIDATORS = [credential_length, no_control_characters]
USERNAME_VALIDATORS = [*CREDENTIAL_VALIDATORS, credential_edges, username_characters]
PASSWORD_VALIDATORS = [*CREDENTIAL_VALIDATORS, credential_edges]


# --- IP address VirtualMTAs ---


def helo_characters(value):
    # The vendor page lists letters, digits and '-', yet its own example is `hostname-28.com`:
    # dots are allowed so that a real reverse-DNS name fits.
    if not re.fullmatch(r"[A-Za-z0-9.-]*", value):
        raise ValidationError("must contain only letters, digits, '.' and '-'")


def not_ipv4(value):
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return
    raise ValidationError("must be a host name, not an IPv4 address")


HELO_VALIDATORS = [hostname_length, helo_characters, hostname_alnum_ends, not_ipv4]


# --- Routing rules ---

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"(\[\*\.\]|\*\.)?{_LABEL}(\.{_LABEL})*")
PORTION_MAX = 1_000_000
PORTION_MESSAGE = f"must be a number greater than 0 and at most {PORTION_MAX}"


def portion(value):
    """A target's portion of the mail: a weight, not a percentage."""
    if not 0 < value <= PORTION_MAX:
        raise ValidationError(PORTION_MESSAGE)


def domain_pattern(value):
    """`example.com` (that domain), `[*.]example.com` (it and its subdomains) or `*.example.com`
    (its subdomains only)."""
    bare = value.removeprefix("[*.]").removeprefix("*.")
    if len(bare) > 253 or not _DOMAIN.fullmatch(value):
        raise ValidationError(
            "must be a domain name, optionally prefixed with [*.] (it and its subdomains) "
            "or *. (its subdomains only)"
        )


# --- Limits where the vendor is silent: every request does bounded work ---

# Targets in one route (a routing rule's default, or one domain override).
MAX_TARGETS_PER_ROUTE = 100
# Domain overrides in one routing rule, and domains in one override.
MAX_OVERRIDES_PER_RULE = 1000
MAX_DOMAINS_PER_OVERRIDE = 1000
# Hand-offs (redirects and routing-rule targets) on any delivery path: A -> B -> C is 2.
MAX_DELIVERY_HOPS = 16
# Referrers named one by one in a refused delete; the rest are counted.
MAX_REFERRERS_NAMED = 20


# --- Mail Manager tags (the botocore model's Tag shape; `aws:` keys are AWS's own) ---

TAG_KEY = re.compile(r"[a-zA-Z0-9/_+=.:@-]{1,128}")
TAG_VALUE = re.compile(r"[a-zA-Z0-9/_+=.:@-]{0,256}")


def tag_key_characters(value):
    if not isinstance(value, str) or not TAG_KEY.fullmatch(value):
        raise ValidationError(f"must match {TAG_KEY.pattern}")


def tag_key_not_reserved(value):
    if value.lower().startswith("aws:"):
        raise ValidationError("must not start with aws: (reserved)")


def tag_value_characters(value):
    if not isinstance(value, str) or not TAG_VALUE.fullmatch(value):
        raise ValidationError(f"must match {TAG_VALUE.pattern}")


def tag_count(count):
    """A relay's tags, counted once the change is applied."""
    if count > settings.MAILMANAGER_MAX_TAGS:
        raise ValidationError(f"a resource may have at most {settings.MAILMANAGER_MAX_TAGS} tags")


TAG_KEY_VALIDATORS = [tag_key_characters, tag_key_not_reserved]
TAG_VALUE_VALIDATORS = [tag_value_characters]


# --- Mail Manager SecretArn (the botocore model's pattern; Mail Manager and the admin) ---

SECRET_ARN = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov|aws-eusc):secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[a-zA-Z0-9/_+=,.@-]+"
)


def secret_arn_pattern(value):
    # For people (the admin): what the ARN looks like, in words; the API answers the pattern.
    if not isinstance(value, str) or not SECRET_ARN.fullmatch(value):
        raise ValidationError(
            "must be an AWS Secrets Manager secret ARN: "
            "arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>, the name of "
            "letters, digits and / _ + = , . @ -"
        )
