"""Domain errors raised by the write services; each API facade renders them in its own shape."""


class RelayError(Exception):
    """A refused request. `messages` holds one English sentence per problem."""

    def __init__(self, messages):
        if isinstance(messages, str):
            messages = [messages]
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


class InvalidRequest(RelayError):
    """The request itself is malformed: not JSON, a missing root key, an unknown attribute."""


class ValidationFailed(RelayError):
    """A field breaks a rule; nothing was written."""


class NameTaken(ValidationFailed):
    """The name is already used by a VirtualMTA of any type (case-insensitive)."""


class QuotaExceeded(ValidationFailed):
    """A configured limit on the number of records is reached."""


class InUse(RelayError):
    """A delete refused because other records refer to this one; one message per referrer."""


class Forbidden(RelayError):
    """The caller may not do this, whatever the request says (e.g. a key for someone else)."""


class Stale(RelayError):
    """The write named the version of the record it was based on, and the record has been
    written since: nothing was changed (a lost update refused)."""


class NotFound(RelayError):
    """No such record."""
